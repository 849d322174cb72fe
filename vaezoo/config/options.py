"""The options of a config group, and one option composed as a job would see it.

A group folder also holds shared bases (``conf/hardware/_base.yaml``) that its options list in their
defaults; files whose names start with ``_`` are never options, so every listing goes through
:func:`group_options`. Option files may be global (a dataset option also sets the likelihood and
``eval.metrics``), so an option's node is read by composing it, never by loading its file.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from vaezoo.paths import config_dir, group_options


def compose_group(group: str, option: str, config_name: str = "config") -> DictConfig:
    """The ``group`` node of the primary config composed with ``group=option`` (its defaults applied).

    Works inside a running Hydra application (its config search path is reused) and outside one.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = [f"{group}={option}"]
    if GlobalHydra.instance().is_initialized():
        cfg = compose(config_name, overrides=overrides)
    else:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(config_name, overrides=overrides)
    node = OmegaConf.create(OmegaConf.to_container(cfg[group], resolve=True))  # detached from the rest
    assert isinstance(node, DictConfig)
    return node


__all__ = ["compose_group", "group_options"]
