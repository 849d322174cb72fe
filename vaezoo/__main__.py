"""``python -m vaezoo``: the Hydra application (see ``python -m vaezoo --help``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from vaezoo.errors import ConfigError, VaezooError
from vaezoo.paths import config_dir
from vaezoo.reproduction import reproduce_argv
from vaezoo.resume import resume_argv

_GROUP_OVERRIDE = re.compile(r"^[+~]?(?P<group>[a-z_]+(?:/[a-z_]+)?)=(?P<values>[A-Za-z0-9_,.\-]+)$")


def check_group_choices(args: list[str], conf: Path) -> str | None:
    """One line naming an unknown option of a config group, or None when all choices exist.

    Hydra reports these itself, over several lines; checking first keeps the message to one line.
    Only plain ``group=a,b`` overrides are checked; anything fancier is left to Hydra.
    """
    for arg in args:
        match = _GROUP_OVERRIDE.match(arg)
        if not match or not (conf / match["group"]).is_dir():
            continue
        group = conf / match["group"]
        options = sorted(p.stem for p in group.glob("*.yaml"))
        for value in match["values"].split(","):
            if value != "null" and not (group / f"{value}.yaml").is_file():
                return f"vaezoo: unknown {match['group']} {value!r}; choose one of: {', '.join(options)}"
    return None


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def run(cfg: DictConfig) -> float:
    """Train one job; returns the best validation negative ELBO (what sweepers minimise)."""
    from vaezoo.sweep import run_job
    from vaezoo.train import train

    def task(cfg: DictConfig) -> float:
        report = train(cfg)
        best = report.get("best_val_elbo_nats")
        return -best if best is not None else float("nan")

    try:
        return run_job(task, cfg)  # in a multirun, failures are recorded, not raised
    except VaezooError as err:
        # One line on stderr and a non-zero exit instead of Hydra's multi-line report.
        print(f"vaezoo: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def main() -> None:
    problem = check_group_choices(sys.argv[1:], Path(config_dir()))
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(2)
    try:
        # resume=<job dir> becomes that job's overrides; sys.argv is rewritten (not just parsed) because
        # Lightning's DDP launcher starts the other processes with this same command line.
        sys.argv[1:] = reproduce_argv(resume_argv(sys.argv[1:]))
    except ConfigError as err:
        print(f"vaezoo: {err}", file=sys.stderr)
        sys.exit(2)
    run()
    from vaezoo.sweep import FAILURES

    if FAILURES:  # a multirun in which some jobs failed (listed above); the others kept their results
        sys.exit(1)


if __name__ == "__main__":
    main()
