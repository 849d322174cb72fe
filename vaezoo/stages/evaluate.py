"""Evaluation stage: ``python -m vaezoo.evaluate run=<job or sweep folder> [eval.metrics=[...]]``.

For every finished job it reloads the model (:func:`vaezoo.jobs.load.load_run`) and runs the post-fit
evaluation training's end runs (:func:`vaezoo.post_fit.evaluate_model`: test report, registered
metrics, pictures) with the job's own settings, except those given in conf/evaluate.yaml. It writes
the ``test`` and ``metrics`` sections of the job's results.json (other keys kept, earlier metrics kept)
and the same summary values and pictures to the job's own W&B run.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import hydra
from omegaconf import DictConfig

from vaezoo.paths import config_dir, quote_run_path, require_run_argument

log = logging.getLogger(__name__)


def evaluate_job(job: Any, cfg: DictConfig) -> dict[str, Any]:
    """The post-fit evaluation of one finished job (:func:`vaezoo.post_fit.evaluate_model`, the one
    training's end runs), written into its results.json and W&B run; returns the metrics."""
    from vaezoo.jobs.load import load_run
    from vaezoo.post_fit import PostFitSettings, evaluate_model
    from vaezoo.training.wandb_run import log_pictures, reopened_job_run, write_summary

    loaded = load_run(job.path, cfg.checkpoint, cfg.data_root)
    results = job.results
    settings = PostFitSettings.from_config(loaded.cfg, overrides=cfg)
    settings = settings.with_device(evaluation_device(settings.device, results.device))
    if not cfg.eval.test:
        settings = settings.keeping_test(results.test)
    settings.check()
    datamodule = loaded.datamodule
    datamodule.load()
    samplers = job_samplers(loaded.model, datamodule, job.path, settings.eval.samplers)
    post_fit = evaluate_model(
        loaded.model,
        datamodule,
        loaded.cfg.dataset,
        settings,
        job.path / "images",
        metrics_rows=job.metrics_rows(),
        samplers=samplers,
    )
    results.test = post_fit.test
    results.metrics = {**results.metrics, **post_fit.metrics}  # metrics of earlier evaluations kept
    job.write_results(results)
    if cfg.wandb:
        record = job.run_record
        if record is None:
            log.warning("%s has no run.json (no W&B run id): metrics written to results.json only", job.path)
        else:
            with reopened_job_run(job.path, record, loaded.cfg.get("logger"), job_type="evaluate") as run:
                write_summary(run, post_fit.summary())
                log_pictures(run, post_fit.pictures)
    return post_fit.metrics


def job_samplers(model: Any, datamodule: Any, job_dir: Any, named: tuple[str, ...]) -> dict[str, Any]:
    """The job's fitted latent samplers (every one stored, and the ``eval.sampler`` ones, which must be),
    each checked against the model's latent size; {} for a model with discrete codes."""
    from vaezoo.samplers.store import load_sampler, stored_samplers

    names = list(dict.fromkeys([*stored_samplers(job_dir), *named]))
    if not names:
        return {}
    batch = next(iter(datamodule.loader("test", batch_size=1)))
    x = batch["x"].to(model.device).float()
    y = batch.get("y")
    y = None if y is None else y.to(model.device)
    if model.code_indices(x, y) is not None:
        if named:
            from vaezoo.samplers.through import check_continuous

            check_continuous(model, x, y)
        return {}
    dim = int(model.representation(x, y).shape[1])
    return {name: load_sampler(job_dir, name, dim) for name in names}


def evaluation_device(given: str | None, recorded: str | None) -> str:
    """``device=`` when given; else the device the job was evaluated on at training's end, when this
    machine has it (the same numbers), else the CPU, said in a warning."""
    import torch

    if given is not None:
        return str(given)
    if recorded is None or recorded == "cpu":
        return "cpu"
    kind = recorded.split(":", 1)[0]
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}.get(kind, False)
    if available:
        return recorded
    log.warning(
        "the job was evaluated on %s at training's end, which this machine lacks: evaluating on the CPU "
        "(numbers may differ in their last digits; device=cpu silences this)",
        recorded,
    )
    return "cpu"


def evaluate_folder(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """Evaluate every finished job under ``cfg.run``; returns {job name: metrics}."""
    from vaezoo.errors import ConfigError
    from vaezoo.evaluation.pipeline import check_eval_config
    from vaezoo.jobs.folder import find_jobs

    if cfg.eval.metrics is not None:  # a misspelt metric fails before any job is loaded
        check_eval_config({"metrics": cfg.eval.metrics, "settings": cfg.eval.settings})
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
    from vaezoo.errors import VaezooError, write_failure

    try:
        evaluate_folder(cfg)
    except VaezooError as err:  # one line and a non-zero exit instead of Hydra's multi-line report
        print(f"vaezoo.stages.evaluate: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as err:  # a full disk or read-only folder while writing results or pictures
        failure = write_failure(
            err, cfg.run, elsewhere=f"cp -r {cfg.run} <folder>; run=<folder>", after="evaluate again"
        )
        if failure is None:
            raise
        print(f"vaezoo.stages.evaluate: error: {failure}", file=sys.stderr)
        raise SystemExit(failure.exit_status) from None


def check_before_running(args: list[str]) -> None:
    """The metric names and settings of the command line, checked before Hydra creates the
    ``evaluation/`` folder in the job: a refused evaluation writes nothing. Overrides Hydra cannot
    compose are left to Hydra's own message."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from vaezoo.evaluation.pipeline import check_eval_config

    if any(a.startswith("-") for a in args):
        return
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose("evaluate", overrides=args)
    except HydraException:
        return
    check_eval_config({"metrics": cfg.eval.metrics, "settings": cfg.eval.settings})
    if cfg.eval.get("sampler") is not None:
        from vaezoo.post_fit import _names
        from vaezoo.samplers import sampler_entry

        for name in _names(cfg.eval.sampler):
            sampler_entry(name)


def main() -> None:
    require_run_argument(
        "vaezoo.stages.evaluate",
        "a finished job or sweep folder, e.g. python -m vaezoo.evaluate run=runs/multirun/<time>",
    )
    from vaezoo.jobs.safety import check_run_argument

    check_run_argument("vaezoo.stages.evaluate", sys.argv[1:])  # before Hydra writes into the job folder
    sys.argv[1:] = quote_run_path(sys.argv[1:])
    from vaezoo.errors import VaezooError
    from vaezoo.stages.signals import run_stopping_on_signals

    try:
        check_before_running(sys.argv[1:])
    except VaezooError as err:
        print(f"vaezoo.stages.evaluate: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None

    run_stopping_on_signals("vaezoo.stages.evaluate", "the evaluation", run)


if __name__ == "__main__":
    main()
