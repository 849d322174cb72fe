"""The one W&B writer: which mode a run uses, how a stage reopens a job's run, how a sweep's group run
is opened, and how summary values and pictures are written to any of them.

Training's logger (:func:`vaezoo.builder.build_loggers`) starts a job's run; the end of training, the
evaluation stage and the sweep's leaderboard then write through :func:`write_summary` and
:func:`log_pictures`, so the same post-fit results land in W&B the same way whoever computed them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vaezoo.errors import ConfigError

# WANDB_MODE values W&B accepts, as logger.mode values.
_WANDB_MODES = {
    **{"online": "online", "run": "online"},
    **{"offline": "offline", "dryrun": "offline", "disabled": "disabled"},
}


def wandb_mode(logger_cfg: Any) -> str:
    """``logger.mode``, which defaults to the WANDB_MODE environment variable (then offline)."""
    mode = str(logger_cfg.mode)
    if mode not in _WANDB_MODES:
        raise ConfigError(f"logger.mode={mode} (or WANDB_MODE) must be online, offline or disabled")
    return _WANDB_MODES[mode]


def write_summary(run: Any, values: Mapping[str, Any]) -> None:
    """Summary values on a W&B run (numbers only: W&B's summary is what its tables sort by)."""
    numbers = {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if numbers:
        run.summary.update(numbers)


def log_pictures(run: Any, pictures: Mapping[str, Path]) -> None:
    """The post-fit pictures as ``pictures/<name>`` images of a W&B run."""
    if not pictures:
        return
    import wandb

    run.log({f"pictures/{name}": wandb.Image(str(path)) for name, path in pictures.items()})


@contextmanager
def reopened_job_run(
    job_dir: Path, record: Mapping[str, Any], logger_cfg: Any, job_type: str
) -> Iterator[Any]:
    """The job's own W&B run (the id in its run.json), reopened offline in its folder for a later stage;
    ``wandb sync`` uploads it. Finished when the block ends."""
    import wandb

    logger_cfg = logger_cfg or {}
    run = wandb.init(
        id=record["wandb_id"],
        resume="allow",
        dir=str(job_dir),
        mode="offline",
        job_type=job_type,
        project=logger_cfg.get("project"),
        entity=logger_cfg.get("entity"),
        name=record.get("name"),
        group=record.get("group"),
    )
    try:
        yield run
    finally:
        run.finish()


@contextmanager
def group_run(logger_cfg: Any, folder: Path, name: str, group: str | None, job_type: str) -> Iterator[Any]:
    """A new run in a sweep's W&B group (e.g. the leaderboard), written under ``folder``."""
    import wandb

    run = wandb.init(
        project=logger_cfg.project,
        entity=logger_cfg.entity,
        group=group,
        job_type=job_type,
        name=name,
        dir=str(folder),
        mode=wandb_mode(logger_cfg),
        reinit="create_new",
    )
    try:
        yield run
    finally:
        run.finish()
