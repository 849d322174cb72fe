"""The one training entry: compose config -> build data, model, objective -> fit -> test -> report.

Heavy imports live inside functions so ``python -m vaezoo --help`` stays fast.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vaezoo.errors import ConfigError

log = logging.getLogger("vaezoo")

MODEL_META_KEYS = ("name", "default_beta", "grad_skip_threshold")


def resolve_hardware(hw: DictConfig) -> dict[str, Any]:
    """Trainer keyword arguments for the ``hardware`` group; says which device it picked."""
    import torch

    accelerator = hw.accelerator
    has_cuda = torch.cuda.is_available()
    if accelerator == "auto":
        accelerator = "gpu" if has_cuda else "cpu"
        log.info(
            "hardware=auto: training on %s",
            "CUDA GPU " + torch.cuda.get_device_name(0) if has_cuda else "the CPU (no CUDA device visible)",
        )
    if accelerator == "gpu" and not has_cuda:
        raise ConfigError(
            "hardware asks for a GPU but no CUDA device is visible; use hardware=cpu or hardware=auto"
        )
    precision = hw.precision
    if precision is None:
        precision = "bf16-mixed" if accelerator == "gpu" and torch.cuda.is_bf16_supported() else "32-true"
    if accelerator == "gpu":
        torch.set_float32_matmul_precision("high")
    return {
        "accelerator": accelerator,
        "devices": hw.devices,
        "precision": precision,
        "strategy": hw.strategy,
    }


def build_loggers(cfg: DictConfig, job_dir: Path, run_name: str, group: str | None, tags: list[str]) -> list:
    from lightning.pytorch.loggers import CSVLogger, WandbLogger

    kind = cfg.logger.name
    if kind == "none":
        return []
    loggers: list = [CSVLogger(save_dir=str(job_dir), name="", version="")]
    if kind == "wandb":
        if cfg.logger.mode not in ("offline", "online", "disabled"):
            raise ConfigError(f"logger.mode={cfg.logger.mode!r} must be offline, online or disabled")
        loggers.append(
            WandbLogger(
                project=cfg.logger.project,
                entity=cfg.logger.entity,
                name=run_name,
                group=cfg.logger.group or group,
                tags=[*tags, *cfg.logger.tags],
                save_dir=str(job_dir),
                mode=cfg.logger.mode,
            )
        )
    elif kind != "csv":
        raise ConfigError(f"logger.name={kind!r} must be wandb, csv or none")
    return loggers


def run_identity(cfg: DictConfig) -> tuple[Path, str, str | None, list[str]]:
    """The job's folder, W&B run name, W&B group (one per multirun) and tags."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    job_dir = Path(hc.runtime.output_dir)
    name = hc.job.override_dirname or "defaults"
    group = None
    if hc.mode == RunMode.MULTIRUN:
        group = Path(str(hc.sweep.dir)).name
        name = f"{hc.job.num}:{name}"
    choices = hc.runtime.choices
    tags = [f"{g}={choices.get(g)}" for g in ("model", "dataset", "likelihood", "kl") if choices.get(g)]
    return job_dir, name, group, tags


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, test and evaluate one configuration; returns the report written to results.json."""
    import lightning as L
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import WandbLogger

    from vaezoo.evaluation.report import evaluate, first_examples
    from vaezoo.models import build_model
    from vaezoo.objective import Objective
    from vaezoo.training import VAEModule
    from vaezoo.training.callbacks import ImageGrids

    job_dir, run_name, group, tags = run_identity(cfg)
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    hardware = resolve_hardware(cfg.hardware)
    L.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.dataset)
    likelihood = instantiate(cfg.likelihood)
    likelihood.check_data(datamodule.info, cfg.dataset.name)
    model_params = {
        k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if k not in MODEL_META_KEYS
    }
    model = build_model(cfg.model.name, model_params, datamodule.info, likelihood)
    objective = Objective(kl=instantiate(cfg.kl), k=cfg.objective.k)
    objective.check_model(model, cfg.model.name)
    module = VAEModule(model, objective, **cfg.optimizer)
    log.info("model %s: %.2fM parameters", cfg.model.name, sum(p.numel() for p in model.parameters()) / 1e6)

    loggers = build_loggers(cfg, job_dir, run_name, group, tags)
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    checkpoint = ModelCheckpoint(
        dirpath=job_dir / "checkpoints",
        filename="best-epoch{epoch:03d}",
        monitor="val/elbo",
        mode="max",
        save_last=True,
        auto_insert_metric_name=False,
    )
    images = ImageGrids(job_dir / "images", cfg.images.n_images, cfg.images.every_n_epochs)
    trainer = L.Trainer(
        **hardware,
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        logger=loggers or False,
        callbacks=[checkpoint, images],
        default_root_dir=str(job_dir),
    )
    try:
        started = time.perf_counter()
        trainer.fit(module, datamodule=datamodule)
        train_seconds = time.perf_counter() - started
        best = checkpoint.best_model_path or None
        trainer.test(module, datamodule=datamodule, ckpt_path=best, weights_only=False)
        test_batches = datamodule.loader("test", batch_size=cfg.eval.batch_size)
        if cfg.eval.get("max_examples"):
            test_batches = first_examples(test_batches, int(cfg.eval.max_examples))
        module.model.to(trainer.strategy.root_device)
        test_report = evaluate(
            module.model, test_batches, cfg.eval.iw_k, cfg.eval.iw_chunk, cfg.eval.active_units_threshold
        )
        report = {
            "model": cfg.model.name,
            "dataset": cfg.dataset.name,
            "likelihood": cfg.likelihood._target_.rsplit(".", 1)[-1],
            "kl": cfg.kl._target_.rsplit(".", 1)[-1],
            "beta": float(cfg.beta),
            "seed": int(cfg.seed),
            "test": test_report,
            "best_val_elbo_nats": float(checkpoint.best_model_score)
            if checkpoint.best_model_score is not None
            else None,
            "epochs": trainer.current_epoch,
            "steps": trainer.global_step,
            "train_seconds": round(train_seconds, 2),
            "device": str(trainer.strategy.root_device),
            "checkpoints": {"best": best, "last": checkpoint.last_model_path or None},
            "job_dir": str(job_dir),
        }
        (job_dir / "results.json").write_text(json.dumps(report, indent=2))
        for lg in loggers:
            if isinstance(lg, WandbLogger):
                lg.experiment.summary.update(
                    {f"test/{k}": v for k, v in test_report.items() if isinstance(v, (int, float))}
                )
        log.info(
            "test ELBO %.2f nats, IW bound (k=%s) %s, active units %d/%d",
            test_report["elbo_nats"],
            test_report.get("iw_k"),
            f"{test_report['iw_bound_nats']:.2f}" if test_report.get("iw_bound_nats") is not None else "n/a",
            test_report["active_units"],
            test_report["latent_units"],
        )
        log.info(
            "outputs in %s (results.json, images/, checkpoints/, metrics.csv%s)",
            job_dir,
            ", wandb/" if any(isinstance(lg, WandbLogger) for lg in loggers) else "",
        )
        return report
    finally:
        for lg in loggers:
            if isinstance(lg, WandbLogger):
                lg.experiment.finish()
