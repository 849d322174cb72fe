"""``python -m vaezoo.report FOLDER [--out FILE]``: the self-contained HTML report of a sweep or runs folder
(leaderboard, trade-off plots, per-job pictures and configs); also written at the end of every multirun."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from vaezoo.errors import VaezooError, write_failure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaezoo.report", description=__doc__)
    parser.add_argument(
        "folder", help="a sweep folder (runs/multirun/<time>), a runs folder or one job folder"
    )
    parser.add_argument("--out", help="where to write the HTML (default: FOLDER/report.html)")
    parser.add_argument(
        "--inline-pictures-max-jobs",
        type=int,
        default=None,
        metavar="N",
        help="inline every job's pictures up to N jobs, link them beyond (default 20; 0: always link)",
    )
    args = parser.parse_args(argv)
    from vaezoo.stages.signals import run_stopping_on_signals

    started = time.perf_counter()

    def report() -> tuple[Any, Path]:
        from vaezoo.paths import unwritable_folder_problem
        from vaezoo.reports.html import INLINE_PICTURES_MAX_JOBS, REPORT, write_report
        from vaezoo.reports.leaderboard import leaderboard

        out = Path(args.out) if args.out else Path(args.folder) / REPORT
        problem = unwritable_folder_problem(out.parent, "report's folder", "write it elsewhere: --out <file>")
        if problem and Path(args.folder).is_dir():  # a missing folder gets its own message below
            raise VaezooError(problem)
        board = leaderboard(args.folder)
        if not board.rows:
            raise VaezooError(f"no job folders under {args.folder}; give a sweep folder or a runs folder")
        limit = (
            INLINE_PICTURES_MAX_JOBS
            if args.inline_pictures_max_jobs is None
            else args.inline_pictures_max_jobs
        )
        if limit < 0:
            raise VaezooError(f"--inline-pictures-max-jobs={limit} must be an integer >= 0 (0: always link)")
        return board, write_report(args.folder, args.out, inline_pictures_max_jobs=limit)

    try:
        board, path = run_stopping_on_signals("vaezoo.report", "the report", report)
    except VaezooError as err:
        print(f"vaezoo: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a read-only folder or a full disk
        from vaezoo.reports.html import REPORT

        target = args.out or Path(args.folder) / REPORT
        failure = write_failure(err, target, elsewhere="--out <file>", after="run it again")
        if failure is None:
            raise
        print(f"vaezoo: error: {failure}", file=sys.stderr)
        return failure.exit_status
    from vaezoo.reports.leaderboard import print_board

    print_board(board, report=path)
    size_mb = path.stat().st_size / 1e6
    print(
        f"{len(board.rows)} jobs: report written in {time.perf_counter() - started:.1f} s, {size_mb:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
