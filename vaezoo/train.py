"""The training stage: composed config -> objects (via :mod:`vaezoo.builder`) -> fit -> test -> report.

Heavy imports live inside functions so ``python -m vaezoo --help`` stays fast.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("vaezoo")


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


def paper_comparison(paper: dict[str, Any], test_report: dict[str, Any]) -> dict[str, Any]:
    """The preset's published number beside the one measured here (same metric, same units)."""
    metric = paper["metric"]
    measured = test_report.get(metric)
    log.info("paper: %s = %s (%s); measured here: %s", metric, paper["value"], paper.get("source"), measured)
    return {
        **paper,
        "measured": measured,
        "difference": None if measured is None else measured - paper["value"],
    }


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, test and evaluate one configuration; returns the report written to results.json."""
    from lightning.pytorch.loggers import WandbLogger
    from lightning.pytorch.utilities import rank_zero_only

    from vaezoo.builder import build_loggers, build_module, build_trainer, resolve_hardware
    from vaezoo.evaluation.report import evaluate, first_examples
    from vaezoo.provenance import environment
    from vaezoo.reproduction import check_before_run, report_reproduction
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
    reproducing = Path(cfg.reproduce) if cfg.get("reproduce") else None
    original = check_before_run(reproducing, cfg, hardware["accelerator"]) if reproducing else None

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
            "environment": environment(str(trainer.strategy.root_device)),
            "lr_schedule": module.schedule.record() if module.schedule is not None else None,
        }
        if cfg.get("paper"):
            report["paper"] = paper_comparison(OmegaConf.to_container(cfg.paper, resolve=True), test_report)
        if reproducing is not None and original is not None:
            report["reproduction"] = report_reproduction(reproducing, original, report)
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
