"""Sweeps that survive a failing job: record the failure, keep going, report all failures at the end.

Hydra's launchers stop a multirun at the first job that raises. In a multirun, vaezoo's task function
instead logs the traceback to the job's ``vaezoo.log``, writes ``failed.json`` into the job's folder and
returns NaN (Optuna records that trial as failed); :class:`ReportFailures` (a Hydra callback, wired in
``conf/config.yaml``) then lists every failed job when the sweep ends, and ``python -m vaezoo`` exits with
status 1. It reads the job folders, so it works with every launcher (in-process, joblib workers, SLURM).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from vaezoo.errors import JobInterrupted, TrainingFailure, VaezooError
from vaezoo.jobs.json_files import write_json_atomically

log = logging.getLogger("vaezoo")

FAILED = "failed.json"

# Failed jobs of the multirun that just ended in this process (Hydra ignores a callback's exceptions, so
# the exit status is set by vaezoo.__main__ from this list).
FAILURES: list[dict[str, Any]] = []


def run_job(task: Callable[[DictConfig], float], cfg: DictConfig) -> float:
    """Run ``task(cfg)``; in a multirun a failure is recorded in the job folder instead of raised.

    A run that started and could not finish (diverged, disk full, interrupted) is recorded in
    ``failed.json`` in single runs too. An interrupted job stops the sweep: it is re-raised.
    """
    hc = HydraConfig.get()
    job_dir = Path(hc.runtime.output_dir)
    if hc.mode != RunMode.MULTIRUN:
        try:
            result = task(cfg)
        except TrainingFailure as err:
            _record(job_dir, hc, err)
            raise
        (job_dir / FAILED).unlink(missing_ok=True)  # a stale record from before a successful resume
        return result
    try:
        result = task(cfg)
        (job_dir / FAILED).unlink(missing_ok=True)
        return result
    except JobInterrupted as err:
        _record(job_dir, hc, err)
        raise
    except Exception as err:
        # A config problem is explained by its message; anything else gets its traceback in the job's log.
        trace = "" if isinstance(err, VaezooError) else "\n" + traceback.format_exc()
        log.error("job %s failed: %s%s", hc.job.num, err, trace)
        _record(job_dir, hc, err)
        return float("nan")


def _record(job_dir: Path, hc: Any, err: BaseException) -> None:
    """Write ``failed.json``: the error's one line, and for an interruption the signal and resume command."""
    record: dict[str, Any] = {
        "job": int(hc.job.num) if hc.mode == RunMode.MULTIRUN else 0,
        "overrides": list(hc.overrides.task),
        "error": f"{type(err).__name__}: {err}",
        "log": str(job_dir / f"{hc.job.name}.log"),
    }
    if isinstance(err, JobInterrupted):
        record["interrupted"] = err.signum
        record["resume"] = f"python -m vaezoo resume={job_dir}"
    try:
        job_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomically(job_dir / FAILED, record)
    except OSError as write_err:  # e.g. the full disk that failed the job
        log.error("could not write %s: %s", job_dir / FAILED, write_err)


class ReportFailures(Callback):
    """At the end of a multirun: a summary line, one line per failed job (error, log file), non-zero exit."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = [p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()] if sweep_dir.is_dir() else []
        failed = sorted(
            (json.loads((p / FAILED).read_text()) for p in jobs if (p / FAILED).is_file()),
            key=lambda r: r["job"],
        )
        FAILURES[:] = failed
        if not failed:
            return
        lines = [
            f"vaezoo: {len(failed)} of {len(jobs)} jobs failed; the other jobs' results are in {sweep_dir}",
            *(
                f"  job {r['job']} ({','.join(r['overrides'])}): {r['error']}; log: {r['log']}"
                for r in failed
            ),
        ]
        print("\n".join(lines), file=sys.stderr, flush=True)


#: Override keys that say where or how a sweep ran, not what it compares (left out of W&B group names).
PLACE_KEYS = ("paths.", "logger.", "hardware", "resume", "reproduce", "hydra.")


def swept_keys(task_overrides: Any, sweeper_params: Any = None) -> list[str]:
    """The keys a multirun sweeps: command-line overrides with several values (``beta=1,4``,
    ``range(...)``, ``choice(...)``) and the sweeper's ``params`` (e.g. an experiment's)."""
    keys = []
    for override in task_overrides or []:
        key, _, value = str(override).lstrip("+~").partition("=")
        if ("," in value or "(" in value) and not key.startswith(PLACE_KEYS):
            keys.append(key)
    keys += [str(k) for k in (sweeper_params or {})]
    return list(dict.fromkeys(keys))


def sweep_group(experiment: str | None, keys: list[str], folder_name: str) -> str:
    """The W&B group of a multirun: what it is (its experiment, else its swept keys), then its time."""
    what = experiment or ",".join(keys) or "sweep"
    return f"{what}-{folder_name}"[:128]  # W&B's limit on group names


def sweep_group_of(sweep_dir: Path, experiment: str | None) -> str:
    """:func:`sweep_group` from the ``multirun.yaml`` Hydra writes into the sweep folder before any job
    starts (a job's own config holds only its own values, not the sweep's)."""
    from omegaconf import OmegaConf

    keys: list[str] = []
    record = sweep_dir / "multirun.yaml"
    if record.is_file():
        hydra = OmegaConf.load(record).get("hydra", {})
        keys = swept_keys(
            OmegaConf.select(hydra, "overrides.task"), OmegaConf.select(hydra, "sweeper.params")
        )
    return sweep_group(experiment, keys, sweep_dir.name)


class SummarizeSweep(Callback):
    """At the end of a multirun: the leaderboard in the terminal, the HTML report in the sweep folder,
    and the leaderboard as one W&B table (in a run of job type "leaderboard", in the sweep's group);
    for a study (experiment=disentanglement_study) also the study's tables and figures."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from omegaconf import OmegaConf

        from vaezoo.reports.html import INLINE_PICTURES_MAX_JOBS, write_report
        from vaezoo.reports.leaderboard import leaderboard, print_board

        sweep_dir = Path(str(config.hydra.sweep.dir))
        if not sweep_dir.is_dir():
            return
        try:
            board = leaderboard(sweep_dir)
            if not board.rows:
                return
            limit = OmegaConf.select(
                config, "report.inline_pictures_max_jobs", default=INLINE_PICTURES_MAX_JOBS
            )
            report = write_report(sweep_dir, inline_pictures_max_jobs=int(limit))
            print_board(board, report=report)
            if config.logger.name == "wandb":
                log_leaderboard(config, board, sweep_dir)
        except Exception as err:  # the jobs' results are safe; only the summary is missing
            log.error("could not summarise the sweep in %s: %s", sweep_dir, err)


def leaderboard_dir(sweep_dir: Path) -> Path:
    """Where the leaderboard's W&B run is written: hidden, so the sweep folder's subfolders stay its jobs."""
    folder = sweep_dir / ".leaderboard"
    folder.mkdir(exist_ok=True)
    return folder


def log_leaderboard(config: DictConfig, board: Any, sweep_dir: Path) -> None:
    """The leaderboard as one W&B table, in a run of job type "leaderboard" in the sweep's group; a
    study's per-job, summary and rank-correlation tables and its figures beside it."""
    from vaezoo.reports.leaderboard import wandb_table
    from vaezoo.reports.study import study_of
    from vaezoo.training.wandb_run import group_run

    experiment = config.hydra.runtime.choices.get("experiment")
    keys = swept_keys(config.hydra.overrides.task, config.hydra.sweeper.get("params"))
    group = config.logger.group or sweep_group(experiment, keys, sweep_dir.name)
    name = f"leaderboard:{sweep_dir.name}"
    with group_run(config.logger, leaderboard_dir(sweep_dir), name, group, job_type="leaderboard") as run:
        run.log({"leaderboard": wandb_table(board)})
        study = study_of(board)
        if study is not None:
            run.log(study_for_wandb(study))


def study_for_wandb(study: Any) -> dict[str, Any]:
    """A study's W&B entries: its three tables, and each figure of the report's study section as a plot
    (``study/<metric>`` box plots, ``study/rank_correlation_heatmap``)."""
    import wandb

    from vaezoo.reports.study import figures, wandb_tables

    entries = wandb_tables(study)
    drawn = figures(study)
    names = [*study.metrics, "rank_correlation_heatmap"][: len(drawn)]
    entries.update({f"study/{name}": wandb.Plotly(fig) for name, fig in zip(names, drawn, strict=True)})
    return entries
