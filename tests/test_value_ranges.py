"""Every numeric key of every group option and experiment preset has a declared range (schema.RANGES).

A new key with a number in a conf/ YAML fails here until it gets a range: a value the range refuses
is then stopped before the job starts, in one line that names the key, the value, the range and a fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from vaezoo.config.options import group_options
from vaezoo.config.schema import RANGES, _leaves, validate
from vaezoo.errors import ConfigError
from vaezoo.paths import config_dir

CONF = Path(config_dir())


def groups() -> list[str]:
    """Every group folder of conf/ (model/net included), Hydra's own (hydra/launcher) left to Hydra."""
    found = [p.relative_to(CONF).as_posix() for p in CONF.rglob("*") if p.is_dir()]
    return sorted(g for g in found if not g.startswith("hydra") and not g.startswith("_"))


def every_option() -> list[str]:
    """``group=option`` for every option file (files starting with _ are bases, not options); a study
    method whose model option is not in conf/model/ yet (tests/test_study.py) is left out until it is."""
    from tests.test_study import methods_whose_model_exists

    ready = set(methods_whose_model_exists())
    options = [f"{g}={o}" for g in groups() for o in group_options(g) if g != "method" or o in ready]
    # A method is part of the study's experiment (its defaults pick one): composed inside it.
    return [f"experiment=disentanglement_study {o}" if o.startswith("method=") else o for o in options]


def is_numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, list) and any(is_numeric(v) for v in value)


@pytest.fixture(scope="module")
def composed() -> dict[str, dict[str, Any]]:
    """Each option's composed and resolved config, without Hydra's section."""
    configs = {}
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for option in every_option():
            cfg = compose("config", overrides=option.split())
            values = OmegaConf.to_container(cfg, resolve=True)
            assert isinstance(values, dict)
            values.pop("hydra", None)
            configs[option] = values
    return configs


def test_the_walk_sees_every_group_and_every_preset(composed):
    walked = set(composed)
    assert {"kl=capacity", "kl=cyclical", "model=vqvae", "model/net=conv", "hardware=multinode"} <= walked
    assert {f"experiment={name}" for name in group_options("experiment")} <= walked
    assert "experiment=_mnist" not in walked and "dataset=_base" not in walked
    assert len(walked) >= 40


def test_every_numeric_key_has_a_declared_range(composed):
    undeclared = {
        key: option
        for option, values in composed.items()
        for key, value in _leaves(values)
        # eval.settings.<metric>.<key> are checked by the metric registry against the metric's own
        # defaults (vaezoo/evaluation/registry.py settings_for), not by RANGES
        if is_numeric(value) and key not in RANGES and not key.startswith("eval.settings.")
    }
    assert undeclared == {}, (
        "numeric keys without a range in vaezoo/config/schema.py RANGES (key: an option that sets it): "
        f"{undeclared}"
    )


def test_every_shipped_value_is_in_its_own_range(composed):
    for option, values in composed.items():
        for key, value in _leaves(values):
            if key in RANGES:
                check, wanted = RANGES[key]
                assert check(value), f"{option} sets {key}={value}, outside its range: {wanted}"


def test_every_range_says_what_to_set():
    assert [key for key, (_, wanted) in RANGES.items() if "e.g. " not in wanted] == []


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            ["kl=capacity", "kl.max_capacity=-1"],
            "kl.max_capacity=-1 is out of range; it must be a number of nats >= 0 (the KL target C), "
            "e.g. kl.max_capacity=25",
        ),
        (["kl=cyclical", "kl.ramp_fraction=0"], "kl.ramp_fraction=0 is out of range"),
        (["model=vqvae", "model.ema_decay=1.0"], "model.ema_decay=1.0 is out of range"),
        (["model=vqvae", "model.quantizer=pq"], "model.quantizer=pq is out of range"),
        (["model=vqvae", "model.fsq_levels=[8,1]"], "model.fsq_levels=[8, 1] is out of range"),
        (["model=vqvae", "model.fsq_levels=[]"], "model.fsq_levels=[] is out of range"),
        (["likelihood=gaussian", "likelihood.sigma=0"], "likelihood.sigma=0 is out of range"),
        (["model/net=conv", "model.net.channels=[32,0]"], "model.net.channels=[32, 0] is out of range"),
        (["hardware.devices=0"], "hardware.devices=0 is out of range"),
        (["experiment=quickstart", "hardware.num_threads=0"], "hardware.num_threads=0 is out of range"),
        (["pictures.tsne_points=1"], "pictures.tsne_points=1 is out of range"),
    ],
)
def test_a_value_out_of_range_is_one_line_naming_key_value_range_and_fix(overrides, line):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    assert message.startswith(line) and "\n" not in message and "e.g. " in message


@pytest.mark.parametrize(
    "overrides",
    [
        ["kl=capacity", "kl.max_capacity=0"],
        ["kl=cyclical", "kl.ramp_fraction=1"],
        ["model=vqvae", "model.quantizer=fsq", "model.fsq_levels=[2]"],
        ["hardware=ddp"],  # devices=-1: every visible device
        ["model/net=mlp", "model.net.hidden=[]"],  # no hidden layer
        ["dataset=image_folder", "dataset.image_size=[32,48]"],
    ],
)
def test_edge_values_inside_the_range_pass(overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        validate(compose("config", overrides=overrides))
