"""``python -m vaezoo.table FOLDER ...``: the leaderboard of the jobs under the folders as a Markdown table.

The same rows as the terminal leaderboard and the HTML report (:mod:`vaezoo.reports.leaderboard`,
one reader of job folders); used for the model tables on docs/results.md. Best value per column in bold.
"""

from __future__ import annotations

import sys

from vaezoo.errors import VaezooError


def main() -> None:
    from vaezoo.jobs.folder import find_jobs
    from vaezoo.reports.leaderboard import leaderboard, markdown

    if len(sys.argv) < 2:
        print("usage: python -m vaezoo.table RUN_FOLDER [RUN_FOLDER ...]", file=sys.stderr)
        sys.exit(2)
    try:
        jobs = [job for folder in sys.argv[1:] for job in find_jobs(folder)]
    except VaezooError as err:
        print(f"vaezoo: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(markdown(leaderboard(jobs)))


if __name__ == "__main__":
    main()
