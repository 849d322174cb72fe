"""``python -m benchmarks.report_size SWEEP [--jobs 10]``: how long an N-job sweep's HTML report takes and
how large it is (targets: under 10 s and 10 MB for 10 jobs).

The N jobs are copies of the given sweep's finished jobs (results, images, metrics and configs: what
the report reads), each with its own ``bench_copy=i`` override, in a temporary folder; checkpoints and
W&B files are left out since the report does not read them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from vaezoo.errors import VaezooError


def fake_sweep(source: Path, n_jobs: int, into: Path) -> Path:
    from vaezoo.jobs.folder import find_jobs

    jobs = [j for j in find_jobs(source) if j.status == "finished"]
    if not jobs:
        raise VaezooError(f"no finished job under {source}; run a sweep first (python -m vaezoo -m ...)")
    for i in range(n_jobs):
        job = jobs[i % len(jobs)]
        target = into / f"{i}_{job.name.split('_', 1)[-1]}-{i}"
        shutil.copytree(job.path, target, ignore=shutil.ignore_patterns("checkpoints", "wandb", "*.ckpt"))
        overrides = target / ".hydra" / "overrides.yaml"
        overrides.write_text(overrides.read_text() + f"- bench_copy={i}\n")
    return into


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report_size", description=__doc__)
    parser.add_argument("sweep", type=Path, help="a finished sweep (or runs) folder to copy jobs from")
    parser.add_argument("--jobs", type=int, default=10)
    args = parser.parse_args(argv)
    from vaezoo.reports.html import write_report

    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = fake_sweep(args.sweep, args.jobs, Path(tmp))
        except VaezooError as err:
            print(f"vaezoo: error: {err}", file=sys.stderr)
            return 2
        started = time.perf_counter()
        path = write_report(folder)
        seconds = time.perf_counter() - started
        size = path.stat().st_size / 1e6
    print(f"report of {args.jobs} jobs: {seconds:.2f} s, {size:.2f} MB (targets: < 10 s, < 10 MB)")
    return 0 if seconds < 10 and size < 10 else 1


if __name__ == "__main__":
    sys.exit(main())
