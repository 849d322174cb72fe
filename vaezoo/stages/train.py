"""The training stage: composed config -> objects (via :mod:`vaezoo.builder`) -> fit -> test -> report.

Order matters for trust (see the README's "When things go wrong"): every object is built and, on a
resume, the checkpoint is loaded into the model before anything in the job folder is written; the
run then ends in results.json (strict JSON), or in failed.json and a non-zero exit (diverged, disk
full, interrupted: ``last.ckpt`` saved and the resume command printed).
Heavy imports live inside functions so ``python -m vaezoo --help`` stays fast.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vaezoo.jobs.results import Results

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
        from vaezoo.stages.sweep import sweep_group_of

        group = sweep_group_of(Path(str(hc.sweep.dir)), hc.runtime.choices.get("experiment"))
        name = f"{hc.job.num}:{name}"
    choices = hc.runtime.choices
    tags = [f"{g}={choices.get(g)}" for g in ("model", "dataset", "likelihood", "kl") if choices.get(g)]
    return job_dir, name, group, tags


def measured_value(metric: str, report: Results) -> float | None:
    """A test-section key (``iw_bound_nats``) or a registered metric's value (``metrics.mig.mig``)."""
    if not metric.startswith("metrics."):
        return report.test.get(metric)
    _, name, key = metric.split(".", 2)
    return report.metric_values(name).get(key)


def paper_comparison(paper: dict[str, Any], report: Results) -> dict[str, Any]:
    """The preset's published number beside the one measured here (same metric, same units)."""
    metric = paper["metric"]
    measured = measured_value(metric, report)
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
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from vaezoo.builder import build_loggers, build_module, build_trainer, resolve_hardware
    from vaezoo.errors import JobInterrupted, write_failure
    from vaezoo.jobs.reproduce import check_before_run
    from vaezoo.jobs.resume import RunRecord
    from vaezoo.training.checkpointing import remove_partial_saves
    from vaezoo.training.interrupt import GracefulStop

    job_dir, run_name, group, tags = run_identity(cfg)
    resume = cfg.get("resume")
    # Under DDP every process runs this function; files are written by global rank 0 only.
    is_rank_zero = rank_zero_only.rank == 0
    hardware = resolve_hardware(cfg.hardware)
    # reproduce=<job>: say what differs from the original job (lock, versions, config) before training.
    original = (
        check_before_run(Path(cfg.reproduce), cfg, hardware["accelerator"]) if cfg.get("reproduce") else None
    )

    # Everything that can be wrong with the input is checked before any training starts, and (on a
    # resume) the checkpoint is loaded into the model before the job folder is touched.
    datamodule, module = build_module(cfg)
    ckpt_path = str(check_resumable(job_dir, module)) if resume else None

    run_id = None
    if is_rank_zero:
        job_dir.mkdir(parents=True, exist_ok=True)
        write_job_config(cfg, job_dir, with_hydra_files=bool(resume))
        record = RunRecord.start_or_resume(job_dir, resume, run_name, group)
        run_name, group, run_id = record.name, record.group, record.wandb_id
        if resume and (job_dir / "metrics.csv").is_file():  # Lightning's CSVLogger would delete it
            (job_dir / "metrics.csv").rename(job_dir / f"metrics.before-resume-{record.resumed}.csv")
        if resume:
            for path in remove_partial_saves(job_dir / "checkpoints"):
                log.info("removed %s, a checkpoint save interrupted by the kill", path.name)

    loggers = build_loggers(cfg, job_dir, run_name, group, tags, run_id=run_id)
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        if isinstance(lg, WandbLogger):  # the summary keeps the best validation ELBO, not the last
            lg.experiment.define_metric("val/elbo", summary="max")
            lg.experiment.define_metric("val/*", summary="last")
    if ckpt_path:
        log.info("resuming from %s (W&B run %s)", ckpt_path, run_id)
    stop = GracefulStop(job_dir)
    trainer, checkpoint = build_trainer(
        cfg, job_dir, hardware, datamodule, loggers, more_callbacks=(stop,), job_id=run_id
    )
    exit_code = 1
    with stop.handling_signals():
        try:
            report = fit_and_report(
                cfg, trainer, checkpoint, module, datamodule, loggers, ckpt_path, original
            )
            exit_code = 0
            return report
        except SIGTERMException:  # Lightning stopped outside a training batch; last.ckpt was saved
            raise stop.error() from None
        except JobInterrupted as err:
            exit_code = err.exit_status
            raise
        except OSError as err:  # full disk, file-size limit, read-only folder: results, pictures, W&B
            failure = write_failure(err, job_dir, after=f"resume with python -m vaezoo resume={job_dir}")
            if failure is None:
                raise
            raise type(failure)(f"{failure} (the checkpoints already saved are intact)") from None
        finally:
            for lg in loggers:
                if isinstance(lg, WandbLogger):
                    lg.experiment.finish(exit_code=exit_code)


def check_resumable(job_dir: Path, module: Any) -> Path:
    """Load the checkpoint to resume from into ``module`` (weights only); one line when it does not fit."""
    from vaezoo.errors import ConfigError
    from vaezoo.jobs.resume import check_own_checkpoints, corrupt_checkpoint_fallback, last_checkpoint
    from vaezoo.jobs.safety import load_checkpoint

    path = last_checkpoint(job_dir)
    state = load_checkpoint(path, fallback=corrupt_checkpoint_fallback(job_dir))
    check_own_checkpoints(job_dir, state, path)  # found in its own folder, written by this job
    try:
        module.load_state_dict(state["state_dict"])
    except (RuntimeError, KeyError) as err:
        first = " ".join(str(err).split())[:200]
        raise ConfigError(
            f"resume={job_dir}: {path.name} does not fit the model this config builds ({first}); drop the "
            "overrides that change the architecture, or start a new run"
        ) from None
    return path


def write_job_config(cfg: DictConfig, job_dir: Path, with_hydra_files: bool) -> None:
    """config.yaml (resolved); on a resume also .hydra/ (which Hydra was told not to write early)."""
    (job_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    if with_hydra_files:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        folder = job_dir / ".hydra"
        folder.mkdir(exist_ok=True)
        kept = [o for o in hc.overrides.task if not o.startswith(("resume=", "hydra."))]
        (folder / "overrides.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(kept)))
        (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg))


def check_finite_test(tested: list[dict[str, float]], checkpoint: str | None) -> None:
    """A model whose test loss is NaN or infinite diverged without stopping training (e.g. every
    non-finite update skipped): a failure, before any results.json of nulls or picture of NaNs."""
    import math

    from vaezoo.errors import Diverged

    loss = next((row["test/loss"] for row in tested if "test/loss" in row), None)
    if loss is not None and not math.isfinite(float(loss)):
        raise Diverged(
            f"training diverged: the test loss of {checkpoint or 'the model'} is {loss}; lower optimizer.lr "
            "(or set optimizer.clip_norm) and start a new run"
        )


def fit_and_report(
    cfg: DictConfig,
    trainer: Any,
    checkpoint: Any,
    module: Any,
    datamodule: Any,
    loggers: list,
    ckpt_path: str | None,
    original: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit, test, run the post-fit evaluation (:func:`vaezoo.post_fit.evaluate_model`) and write
    results.json; returns the report.

    ``original`` is the results of the job that ``reproduce=`` reruns: the report then compares with it.
    """
    from lightning.pytorch.loggers import WandbLogger

    from vaezoo.jobs.folder import Job
    from vaezoo.jobs.provenance import environment
    from vaezoo.jobs.reproduce import report_reproduction
    from vaezoo.post_fit import PostFit, PostFitSettings, evaluate_model
    from vaezoo.training.wandb_run import log_pictures, write_summary

    job_dir = Path(trainer.default_root_dir)
    job = Job(job_dir)
    resume = ckpt_path is not None
    settings = PostFitSettings.from_config(cfg)
    settings.check()  # an unknown metric or setting fails now, not after training
    started = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    train_seconds = time.perf_counter() - started
    best = checkpoint.best_model_path or None
    tested = trainer.test(module, datamodule=datamodule, ckpt_path=best, weights_only=True)
    check_finite_test(tested, best or checkpoint.last_model_path)
    if not trainer.is_global_zero:
        return {"best_val_elbo_nats": None, "rank": trainer.global_rank}
    # The post-fit evaluation runs on rank 0 alone over the whole test split, as in a single-process run.
    device = str(trainer.strategy.root_device)
    report = Results(
        model=cfg.model.name,
        dataset=cfg.dataset.name,
        likelihood=cfg.likelihood._target_.rsplit(".", 1)[-1],
        kl=cfg.kl._target_.rsplit(".", 1)[-1],
        beta=float(cfg.beta),
        seed=int(cfg.seed),
        best_val_elbo_nats=float(checkpoint.best_model_score)
        if checkpoint.best_model_score is not None
        else None,
        epochs=trainer.current_epoch,
        steps=trainer.global_step,
        train_seconds=round(train_seconds, 2),
        device=device,
        world_size=trainer.world_size,
        global_batch_size=getattr(datamodule, "batch_size", 0) * trainer.world_size,
        resumed=bool(resume),
        checkpoints={"best": best, "last": checkpoint.last_model_path or None},
        job_dir=str(job_dir),
        environment=environment(device),
        lr_schedule=module.schedule.record() if module.schedule is not None else None,
    )

    def write_results(measured: PostFit) -> None:
        report.test, report.metrics = measured.test, measured.metrics
        if cfg.get("paper"):
            report.paper = paper_comparison(OmegaConf.to_container(cfg.paper, resolve=True), report)
        if original is not None:
            report.reproduction = report_reproduction(Path(cfg.reproduce), original, report.to_dict())
        job.write_results(report)  # strict JSON: a NaN becomes null, with the reason under "nulls"

    for lg in loggers:  # metrics.csv complete on disk: the curves picture reads it
        if not isinstance(lg, WandbLogger):
            lg.save()
    post_fit = evaluate_model(
        module.model,
        datamodule,
        cfg.dataset,
        settings.with_device(device),
        job_dir / "images",
        metrics_rows=job.metrics_rows(),
        measured=write_results,
    )
    for lg in loggers:
        if isinstance(lg, WandbLogger):
            write_summary(lg.experiment, post_fit.summary())
            log_pictures(lg.experiment, post_fit.pictures)
            if report.best_val_elbo_nats is not None:
                write_summary(lg.experiment, {"best/val/elbo": report.best_val_elbo_nats})
    test_report = post_fit.test
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
    return report.to_dict()
