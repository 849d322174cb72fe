"""The one training entry: compose config -> build data, model, objective -> fit -> test -> report.

Heavy imports live inside functions so ``python -m vaezoo --help`` stays fast.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vaezoo.errors import ConfigError, VaezooError

log = logging.getLogger("vaezoo")

MODEL_META_KEYS = ("name", "default_beta", "grad_skip_threshold", "clip_norm")


def build(node: DictConfig) -> Any:
    """hydra.utils.instantiate, but a VaezooError raised by the target surfaces as itself (one line)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node)
    except InstantiationException as err:
        if isinstance(err.__cause__, VaezooError):
            raise err.__cause__ from None
        raise


def resolve_hardware(hw: DictConfig) -> dict[str, Any]:
    """Trainer keyword arguments for the ``hardware`` group; says which device it picked.

    Also applies the group's process-wide settings (CPU threads, flush-denormal, TF32 matmuls), so
    it runs before any data is loaded.
    """
    import torch

    from vaezoo.training.hardware import apply_process_settings

    apply_process_settings(hw)

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
        "num_nodes": hw.get("num_nodes", 1),
        "precision": precision,
        "strategy": resolve_strategy(hw),
    }


def resolve_strategy(hw: DictConfig) -> Any:
    """The Trainer's ``strategy``: the preset's name, or a DDPStrategy when a process-group backend is set.

    ``ddp`` starts the other local processes by rerunning the command line (Lightning's Hydra support
    adds ``hydra.run.dir``), or joins processes that SLURM or torchrun started. A local multirun cannot
    be rerun that way (every process would run the whole sweep), so that combination is refused.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    strategy = hw.strategy
    backend = hw.get("process_group_backend")
    if backend is not None:
        from lightning.pytorch.strategies import DDPStrategy

        if strategy != "ddp":
            raise ConfigError(f"hardware.process_group_backend needs hardware.strategy=ddp, not {strategy}")
        strategy_obj: Any = DDPStrategy(process_group_backend=backend)
    else:
        strategy_obj = strategy
    relaunches = str(strategy).startswith("ddp") and strategy not in ("ddp_spawn", "ddp_fork", "ddp_notebook")
    several = hw.devices not in (1, "1") or hw.get("num_nodes", 1) > 1
    external = SLURMEnvironment.detect() or TorchElasticEnvironment.detect()
    if hw.get("num_nodes", 1) > 1 and not external and "NODE_RANK" not in os.environ:
        raise ConfigError(
            f"hardware.num_nodes={hw.num_nodes} needs the processes on every node started by SLURM "
            "(srun, or hydra/launcher=slurm) or torchrun (or NODE_RANK and MASTER_ADDR set on each node)"
        )
    if relaunches and several and not external and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ConfigError(
            f"hardware.strategy={strategy} restarts the command line in each process, which a local multirun "
            "(-m) cannot do: run each job without -m (one after another), or sweep on a cluster with "
            "hydra/launcher=slurm, where srun starts the processes"
        )
    return strategy_obj


def build_loggers(
    cfg: DictConfig,
    job_dir: Path,
    run_name: str,
    group: str | None,
    tags: list[str],
    run_id: str | None = None,
) -> list:
    """CSV (+ W&B) loggers; ``run_id`` fixes the W&B run id so a resumed job continues the same run."""
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
                id=run_id,
                resume="allow" if run_id else None,
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


def extra_callbacks(cfg: DictConfig) -> list:
    """Lightning callbacks added from the config: ``+callbacks.<name>._target_=<class> ...``."""
    from hydra.utils import instantiate

    return [instantiate(spec) for spec in (cfg.get("callbacks") or {}).values()]


def check_trainer_kwargs(kwargs: dict[str, Any]) -> None:
    """Refuse the Trainer options that VAEModule's own update step replaces, naming what to use instead."""
    if kwargs.get("gradient_clip_val") is not None:
        raise ConfigError(
            f"trainer.gradient_clip_val={kwargs['gradient_clip_val']} is not used by vaezoo; "
            f"set optimizer.clip_norm={kwargs['gradient_clip_val']} instead"
        )
    if (kwargs.get("accumulate_grad_batches") or 1) != 1:
        raise ConfigError(
            "trainer.accumulate_grad_batches is not supported (vaezoo steps the optimiser on every batch); "
            "raise dataset.batch_size instead, or spread it over devices with hardware=ddp"
        )


def build_module(cfg: DictConfig):
    """Data, likelihood, KL regulariser, model and objective from the config, all checked before training.

    Returns (datamodule, module). Every input problem raises a one-line VaezooError here.
    """
    import lightning as L

    from vaezoo.models import build_model
    from vaezoo.objective import Objective
    from vaezoo.training import VAEModule

    check_trainer_kwargs(OmegaConf.to_container(cfg.trainer, resolve=True))
    datamodule = build(cfg.dataset)
    likelihood = build(cfg.likelihood)
    likelihood.check_data(datamodule.info, cfg.dataset.name)
    kl = build(cfg.kl)
    model_params = {
        k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items() if k not in MODEL_META_KEYS
    }
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model = build_model(cfg.model.name, model_params, datamodule.info, likelihood)
    objective = Objective(kl=kl, k=cfg.objective.k)
    objective.check_model(model, cfg.model.name)
    module = VAEModule(model, objective, **cfg.optimizer)
    log.info("model %s: %.2fM parameters", cfg.model.name, sum(p.numel() for p in model.parameters()) / 1e6)
    return datamodule, module


def build_trainer(
    cfg: DictConfig,
    job_dir: Path,
    hardware: dict[str, Any],
    datamodule: Any,
    loggers: list,
    more_callbacks: tuple = (),
    **trainer_overrides: Any,
):
    """The Lightning Trainer every vaezoo job uses (the benchmark times this same one).

    Returns (trainer, checkpoint): the checkpoint callback keeps ``last.ckpt`` and the best by val ELBO.
    """
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from vaezoo.training.callbacks import ImageGrids
    from vaezoo.training.checkpointing import AtomicCheckpointIO, RandomState
    from vaezoo.training.hardware import hardware_callbacks

    checkpoint = ModelCheckpoint(
        dirpath=job_dir / "checkpoints",
        filename="best-epoch{epoch:03d}",
        monitor="val/elbo",
        mode="max",
        save_last=True,
        auto_insert_metric_name=False,
        enable_version_counter=False,  # one last.ckpt, written by this and the every-n-steps checkpoint
    )
    images = ImageGrids(job_dir / "images", cfg.images.n_images, cfg.images.every_n_epochs)
    callbacks = [checkpoint, images, RandomState(), *extra_callbacks(cfg)]
    callbacks += hardware_callbacks(cfg.hardware, hardware["accelerator"])
    every_n_steps = cfg.get("checkpoint", {}).get("every_n_train_steps")
    if every_n_steps:  # last.ckpt also mid-epoch, so a killed job loses at most that many steps
        callbacks.append(
            ModelCheckpoint(
                dirpath=job_dir / "checkpoints",
                save_top_k=0,
                save_last=True,
                every_n_train_steps=every_n_steps,
                enable_version_counter=False,
            )
        )
    callbacks += list(more_callbacks)
    trainer_kwargs = {**OmegaConf.to_container(cfg.trainer, resolve=True), **trainer_overrides}
    trainer = L.Trainer(
        **hardware,
        **trainer_kwargs,
        logger=loggers or False,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        # The in-memory data module shards its own batches, exactly once per evaluation example.
        use_distributed_sampler=not getattr(datamodule, "shards_itself", False),
        default_root_dir=str(job_dir),
    )
    return trainer, checkpoint


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, test and evaluate one configuration; returns the report written to results.json."""
    from lightning.pytorch.loggers import WandbLogger
    from lightning.pytorch.utilities import rank_zero_only

    from vaezoo.evaluation.report import evaluate, first_examples
    from vaezoo.resume import RunRecord, last_checkpoint
    from vaezoo.training.checkpointing import remove_partial_saves

    job_dir, run_name, group, tags = run_identity(cfg)
    resume = cfg.get("resume")
    # Under DDP every process runs this function; files are written by global rank 0 only.
    is_rank_zero = rank_zero_only.rank == 0
    run_id = None
    if is_rank_zero:
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        record = RunRecord.start_or_resume(job_dir, resume, run_name, group)
        run_name, group, run_id = record.name, record.group, record.wandb_id
        if resume and (job_dir / "metrics.csv").is_file():  # Lightning's CSVLogger would delete it
            (job_dir / "metrics.csv").rename(job_dir / f"metrics.before-resume-{record.resumed}.csv")
        if resume:
            for path in remove_partial_saves(job_dir / "checkpoints"):
                log.info("removed %s, a checkpoint save interrupted by the kill", path.name)
    ckpt_path = str(last_checkpoint(job_dir)) if resume else None
    hardware = resolve_hardware(cfg.hardware)

    # Everything that can be wrong with the input is checked before any training starts.
    datamodule, module = build_module(cfg)

    loggers = build_loggers(cfg, job_dir, run_name, group, tags, run_id=run_id)
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    if ckpt_path:
        log.info("resuming from %s (W&B run %s)", ckpt_path, run_id)
    trainer, checkpoint = build_trainer(cfg, job_dir, hardware, datamodule, loggers)
    try:
        started = time.perf_counter()
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=False)
        train_seconds = time.perf_counter() - started
        best = checkpoint.best_model_path or None
        trainer.test(module, datamodule=datamodule, ckpt_path=best, weights_only=False)
        if not trainer.is_global_zero:
            return {"best_val_elbo_nats": None, "rank": trainer.global_rank}
        # The report is computed on rank 0 alone over the whole test split, as in a single-process run.
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
            "world_size": trainer.world_size,
            "global_batch_size": getattr(datamodule, "batch_size", 0) * trainer.world_size,
            "resumed": bool(resume),
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
