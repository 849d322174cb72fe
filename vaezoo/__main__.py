"""``python -m vaezoo``: the Hydra application (see ``python -m vaezoo --help``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from vaezoo.config.options import group_options
from vaezoo.errors import TrainingFailure, VaezooError
from vaezoo.paths import config_dir

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
        options = group_options(match["group"], conf)
        for value in match["values"].split(","):
            if value != "null" and value not in options:
                return f"vaezoo: unknown {match['group']} {value!r}; choose one of: {', '.join(options)}"
    return None


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def run(cfg: DictConfig) -> float:
    """Train one job; returns the best validation negative ELBO (what sweepers minimise)."""
    from vaezoo.stages.sweep import run_job
    from vaezoo.stages.train import train
    from vaezoo.training.console import one_console

    def task(cfg: DictConfig) -> float:
        one_console()  # in the job's process (also a launcher's worker), after Hydra set up logging
        report = train(cfg)
        best = report.get("best_val_elbo_nats")
        return -best if best is not None else float("nan")

    try:
        return run_job(task, cfg)  # in a multirun, failures are recorded, not raised
    except TrainingFailure as err:
        # Diverged, disk full, interrupted (143 / 130): recorded in failed.json; the sweep stops.
        print(f"vaezoo: error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(err.exit_status) from None
    except VaezooError as err:
        # One line on stderr and a non-zero exit instead of Hydra's multi-line report.
        print(f"vaezoo: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def check_before_running(args: list[str]) -> list[str]:
    """The command line as Hydra should see it, after every check that needs no job folder written.

    ``-m`` is moved to the front; ``resume=<job>`` becomes the job's own overrides (checked against the
    allow-list of targets); every job the line asks for is composed and validated; a resume is checked
    against the job's config and checkpoint. Raises VaezooError with one line.
    """
    from vaezoo.config.schema import check_command_line, normalize_argv
    from vaezoo.config.targets import CommandLine, check_job_targets
    from vaezoo.jobs.reproduce import reproduce_argv
    from vaezoo.jobs.resume import check_checkpoint, check_compatible, resume_argv, slurm_requeued_job

    args = normalize_argv(args)
    shows_one = any(a in ("--cfg", "-c", "--info", "-i") for a in args)
    if shows_one and any(a in ("-m", "--multirun") for a in args):
        raise VaezooError("--cfg and --info show one job; drop -m (the first job of the sweep is shown)")
    problem = check_group_choices(args, Path(config_dir()))
    if problem:
        raise VaezooError(problem.removeprefix("vaezoo: "))
    requeued = slurm_requeued_job(args)
    if requeued is not None:
        print(f"vaezoo: SLURM requeued this job; resuming {requeued}", file=sys.stderr, flush=True)
        args = [*args, f"resume={requeued}"]  # the same command line: its own targets are trusted
    typed = CommandLine.of(args)  # the targets this command line names or removes itself are trusted
    args = reproduce_argv(resume_argv(args))
    composed = check_command_line(args, config_dir())
    resume = composed.get("resume") if composed is not None else None
    from_job = resume or (composed.get("reproduce") if composed is not None else None)
    if from_job:  # composed from a job folder's overrides: only vaezoo's own classes, at their places
        check_job_targets(composed, f"{'resume' if resume else 'reproduce'}={from_job}", typed)
    if resume and not any(a in ("--cfg", "-c") for a in args):
        check_compatible(Path(resume), composed)
        check_checkpoint(Path(resume))
    if composed is not None and composed.get("reproduce"):
        from vaezoo.jobs.results import load as load_results

        load_results(Path(composed.reproduce) / "results.json")  # a damaged one is refused before training
    if composed is not None and not shows_one:
        check_writable_outputs(args, composed, resume)
    return args


def check_writable_outputs(args: list[str], composed: DictConfig, resume: str | None) -> None:
    """The job folder Hydra is about to create (or, on a resume, the job folder itself) must be writable:
    refused here in one line, before Hydra's own traceback for the folder it cannot create."""
    from vaezoo.paths import unwritable_folder_problem

    if resume:
        problem = unwritable_folder_problem(
            resume,
            "job folder to resume",
            f"copy it somewhere writable (cp -r {resume} <folder>) and resume that",
        )
    else:
        given = [a.split("=", 1)[1] for a in args if a.startswith(("hydra.run.dir=", "hydra.sweep.dir="))]
        folders = given or [str(composed.paths.runs)]
        fix = "make it writable or choose a writable runs folder: paths.runs=<folder>"
        problem = next((p for f in folders if (p := unwritable_folder_problem(f, "runs folder", fix))), None)
    if problem:
        raise VaezooError(problem)


def main() -> None:
    try:
        # sys.argv is rewritten (not just parsed) because Lightning's DDP launcher starts the other
        # processes with this same command line.
        sys.argv[1:] = check_before_running(sys.argv[1:])
    except VaezooError as err:
        print(f"vaezoo: error: {err}", file=sys.stderr)
        sys.exit(2)
    run()
    from vaezoo.stages.sweep import FAILURES

    if FAILURES:  # a multirun in which some jobs failed (listed above); the others kept their results
        sys.exit(1)


if __name__ == "__main__":
    main()
