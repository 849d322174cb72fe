"""Reload a finished job (its config.yaml and a checkpoint) as a ready model, for second stages."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from vaezoo.errors import ConfigError
from vaezoo.jobs.folder import find_checkpoint, read_job_config
from vaezoo.jobs.safety import check_checkpoint_owner, check_config_targets, load_checkpoint

log = logging.getLogger(__name__)

PRIOR_FILE = Path("prior") / "prior.pt"


@dataclass
class LoadedRun:
    cfg: DictConfig
    model: Any  # VAEModel
    datamodule: Any  # InMemoryDataModule
    checkpoint: Path


def model_state(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The model's weights from a VAEModule checkpoint (prefix ``model.``, compiled or not)."""
    out = {}
    for key, value in state_dict.items():
        if key.startswith("model."):
            out[key[len("model.") :].replace("_orig_mod.", "")] = value
    return out


def load_run(
    job_dir: str | Path, checkpoint: str = "best", data_root: str | None = None, with_prior: bool = True
) -> LoadedRun:
    """Rebuild a job's data module and model from ``<job>/config.yaml`` and load its weights.

    With ``with_prior``, a learned prior saved by ``python -m vaezoo.prior`` in ``<job>/prior/`` is
    attached, so ``model.sample()`` works for models that sample through one (the VQ-VAE).
    """
    from vaezoo.builder import build_data_and_likelihood, build_model_for

    job_dir = Path(job_dir)
    config = job_dir / "config.yaml"
    if not config.is_file():
        raise ConfigError(f"{config} not found; run= must be a finished vaezoo job folder")
    cfg = read_job_config(config)
    check_config_targets(cfg, config)  # a job folder someone sent may not build arbitrary classes
    if data_root is not None:
        cfg.dataset.root = str(data_root)
    datamodule, likelihood = build_data_and_likelihood(cfg)
    model = build_model_for(cfg, datamodule.info, likelihood)
    path = find_checkpoint(job_dir, checkpoint)
    saved = load_checkpoint(path)
    check_checkpoint_owner(job_dir, saved, path)  # a checkpoint of another job is not this job's model
    state = saved["state_dict"]
    model.load_state_dict(model_state(state))
    model.eval()
    if with_prior and (job_dir / PRIOR_FILE).is_file():
        attach_saved_prior(model, job_dir / PRIOR_FILE)
    return LoadedRun(cfg=cfg, model=model, datamodule=datamodule, checkpoint=path)


def attach_saved_prior(model: Any, path: Path) -> None:
    from vaezoo.models.pixelcnn import PixelCNNPrior

    saved = load_checkpoint(path)
    prior = PixelCNNPrior(**saved["hparams"])
    prior.load_state_dict(saved["state_dict"])
    model.attach_prior(prior.eval())
    log.info("attached the learned prior from %s", path)
