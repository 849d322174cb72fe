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

from vaezoo.errors import VaezooError

log = logging.getLogger("vaezoo")

FAILED = "failed.json"

# Failed jobs of the multirun that just ended in this process (Hydra ignores a callback's exceptions, so
# the exit status is set by vaezoo.__main__ from this list).
FAILURES: list[dict[str, Any]] = []


def run_job(task: Callable[[DictConfig], float], cfg: DictConfig) -> float:
    """Run ``task(cfg)``; in a multirun a failure is recorded in the job folder instead of raised."""
    hc = HydraConfig.get()
    job_dir = Path(hc.runtime.output_dir)
    (job_dir / FAILED).unlink(missing_ok=True)  # a stale record from an earlier run in this folder
    if hc.mode != RunMode.MULTIRUN:
        return task(cfg)
    try:
        return task(cfg)
    except Exception as err:
        # A config problem is explained by its message; anything else gets its traceback in the job's log.
        trace = "" if isinstance(err, VaezooError) else "\n" + traceback.format_exc()
        log.error("job %s failed: %s%s", hc.job.num, err, trace)
        record = {
            "job": int(hc.job.num),
            "overrides": list(hc.overrides.task),
            "error": f"{type(err).__name__}: {err}",
            "log": str(job_dir / f"{hc.job.name}.log"),
        }
        job_dir.mkdir(parents=True, exist_ok=True)
        (job_dir / FAILED).write_text(json.dumps(record, indent=2))
        return float("nan")


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
