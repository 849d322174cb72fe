"""Evaluation stage: ``python -m vaezoo.evaluate run=<job or sweep folder> [eval.metrics=[...]]``.

For every finished job it reloads the model (:func:`vaezoo.jobs.load.load_run`), runs the registered
metrics (:mod:`vaezoo.evaluation.registry`) on the test split, writes them into the job's
results.json under ``metrics`` (other keys kept) and adds them to the job's W&B run as summary values.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from vaezoo.paths import config_dir, quote_run_path, require_run_argument

log = logging.getLogger(__name__)


def evaluate_job(job: Any, cfg: DictConfig) -> dict[str, Any]:
    """Metrics for one finished job, written into its results.json and W&B run; returns them."""
    from vaezoo.evaluation.ood import ood_batches_for
    from vaezoo.evaluation.pipeline import build_context, check_eval_config, evaluate_metrics
    from vaezoo.evaluation.registry import summary_values
    from vaezoo.evaluation.test_report import first_examples
    from vaezoo.jobs.load import load_run

    loaded = load_run(job.path, cfg.checkpoint, cfg.data_root)
    job_eval = loaded.cfg.get("eval") or {}
    eval_cfg = OmegaConf.create(
        {
            "metrics": cfg.eval.metrics if cfg.eval.metrics is not None else job_eval.get("metrics"),
            "settings": OmegaConf.merge(job_eval.get("settings") or {}, cfg.eval.settings or {}),
        }
    )
    check_eval_config(eval_cfg)
    datamodule = loaded.datamodule
    datamodule.load()
    batches = datamodule.loader("test", batch_size=cfg.eval.batch_size)
    if cfg.eval.max_examples:
        batches = first_examples(batches, int(cfg.eval.max_examples))
    ood_cfg = OmegaConf.create(
        {
            "ood_dataset": cfg.eval.get("ood_dataset") or job_eval.get("ood_dataset"),
            "batch_size": cfg.eval.batch_size,
            "max_examples": cfg.eval.max_examples,
        }
    )
    ood_name, ood_batches = ood_batches_for(loaded.cfg.dataset, ood_cfg, datamodule.info.shape)
    context = build_context(
        loaded.model,
        datamodule,
        batches,
        loaded.cfg.dataset.name,
        str(loaded.cfg.dataset.get("root")),
        cfg.seed,
        ood_batches=ood_batches,
    )
    context.extras["ood_dataset"] = ood_name
    # Metrics named on the command line are run directly: one that cannot apply is an error, not a skip.
    metrics = evaluate_metrics(eval_cfg, context, strict=cfg.eval.metrics is not None)
    # The one call site where pictures are drawn for an evaluated job (the job's own pictures settings).
    pictures = draw_job_pictures(loaded, job) if cfg.pictures else {}
    results = job.results or {}
    results["metrics"] = {**(results.get("metrics") or {}), **metrics}
    job.write_results(results)
    if cfg.wandb:
        record = job.run_record
        if record is None:
            log.warning("%s has no run.json (no W&B run id): metrics written to results.json only", job.path)
        else:
            update_wandb_run(job.path, record, loaded.cfg, summary_values(metrics), pictures)
    return metrics


def draw_job_pictures(loaded: Any, job: Any) -> dict[str, Path]:
    """The latent-space pictures of a loaded job into its images/, with the job's own settings."""
    from vaezoo.visualize import draw_pictures

    settings = loaded.cfg.get("pictures") or {}
    return draw_pictures(
        loaded.model,
        loaded.datamodule,
        job.path / "images",
        metrics_rows=job.metrics_rows(),
        n_examples=int(settings.get("n_examples", 1000)),
        ood=settings.get("ood", "rotated"),
        tsne_points=int(settings.get("tsne_points", 1000)),
        seed=int(loaded.cfg.get("seed", 0)),
    )


def update_wandb_run(
    job_dir: Path,
    record: dict[str, Any],
    job_cfg: DictConfig,
    values: dict[str, float],
    pictures: dict[str, Path] | None = None,
) -> None:
    """Add summary values (and pictures) to the job's W&B run (same id), offline: ``wandb sync`` uploads."""
    import wandb

    logger = job_cfg.get("logger") or {}
    run = wandb.init(
        id=record["wandb_id"],
        resume="allow",
        dir=str(job_dir),
        mode="offline",
        job_type="evaluate",
        project=logger.get("project"),
        entity=logger.get("entity"),
        name=record.get("name"),
        group=record.get("group"),
    )
    try:
        run.summary.update(values)
        if pictures:
            run.log({f"pictures/{name}": wandb.Image(str(path)) for name, path in pictures.items()})
    finally:
        run.finish()


def evaluate_folder(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """Evaluate every finished job under ``cfg.run``; returns {job name: metrics}."""
    from vaezoo.errors import ConfigError
    from vaezoo.evaluation.pipeline import check_eval_config
    from vaezoo.jobs.folder import find_jobs

    if cfg.eval.metrics is not None:
        check_eval_config(cfg.eval)
    jobs = [job for job in find_jobs(cfg.run) if job.status == "finished"]
    if not jobs:
        raise ConfigError(f"no finished vaezoo job in {cfg.run}; run= must be a job folder or a sweep folder")
    out = {}
    for job in jobs:
        log.info("evaluating %s", job.path)
        out[job.name] = evaluate_job(job, cfg)
    return out


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="evaluate")
def run(cfg: DictConfig) -> None:
    from vaezoo.errors import VaezooError

    try:
        evaluate_folder(cfg)
    except VaezooError as err:  # one line and a non-zero exit instead of Hydra's multi-line report
        print(f"vaezoo.stages.evaluate: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def main() -> None:
    require_run_argument(
        "vaezoo.stages.evaluate",
        "a finished job or sweep folder, e.g. python -m vaezoo.evaluate run=runs/multirun/<time>",
    )
    sys.argv[1:] = quote_run_path(sys.argv[1:])
    run()


if __name__ == "__main__":
    main()
