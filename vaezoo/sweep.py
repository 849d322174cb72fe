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
from vaezoo.jobs import write_json_atomically

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
