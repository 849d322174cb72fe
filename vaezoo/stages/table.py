"""``python -m vaezoo.table FOLDER ...``: the leaderboard of the jobs under the folders as a Markdown table.

The same rows as the terminal leaderboard and the HTML report (:mod:`vaezoo.reports.leaderboard`,
one reader of job folders); used for the model tables on docs/results.md. Best value per column in bold;
then, where samplers were fitted, the sample metrics per job and way of sampling
(:mod:`vaezoo.reports.samples`).
"""

from __future__ import annotations

import argparse
import sys

from vaezoo.errors import VaezooError


def main(argv: list[str] | None = None) -> int:
    """Print the Markdown table; 2 with one line when a folder holds no job (same style as vaezoo.report)."""
    parser = argparse.ArgumentParser(prog="python -m vaezoo.table", description=__doc__)
    parser.add_argument("folders", nargs="+", metavar="FOLDER", help="sweep, runs or job folders")
    args = parser.parse_args(argv)
    from vaezoo.jobs.folder import find_jobs
    from vaezoo.reports.leaderboard import leaderboard, markdown
    from vaezoo.reports.samples import samples_markdown

    try:
        jobs = [job for folder in args.folders for job in find_jobs(folder)]
    except VaezooError as err:
        print(f"vaezoo: error: {err}", file=sys.stderr)
        return 2
    board = leaderboard(jobs)
    print(markdown(board))
    if samples := samples_markdown(board):  # jobs whose sample metrics ran through fitted samplers
        print(f"\n{samples}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
