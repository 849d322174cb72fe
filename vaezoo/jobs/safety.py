"""Loading what a job folder holds without running anything from it.

Checkpoints and priors load with ``torch.load(weights_only=True)``: tensors, numbers and strings
only, so a crafted file cannot execute code while unpickling. A config read from a job folder
(``config.yaml``, ``.hydra/overrides.yaml``, dict-valued overrides included) is data: every
``_target_`` in it must be, at its place, exactly a class vaezoo itself builds there, or a callback of
the registry (:mod:`vaezoo.config.targets`); stored overrides may not change Hydra's own settings
(search path, logging, environment). Anything else is refused with one line naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vaezoo.config.targets import (
    NOTHING_TRUSTED,
    CommandLine,
    check_job_targets,
    foreign_targets,
    nested,
    refusal,
)
from vaezoo.errors import ConfigError, UnsafeInputError


def check_config_targets(cfg: Any, source: Path | str, trusted: CommandLine = NOTHING_TRUSTED) -> None:
    """Refuse a config read from a job folder whose ``_target_``s are not exactly vaezoo's own."""
    check_job_targets(cfg, source, trusted)


def check_job_folder(job: Path, trusted: CommandLine = NOTHING_TRUSTED) -> None:
    """A job folder's config.yaml and run.json, read as data before Hydra starts (so a refused folder
    gets nothing written into it): a config naming a class vaezoo does not build at that place, or a
    malformed run.json, means the folder was not written by vaezoo as it is."""
    from vaezoo.jobs.folder import RUN_RECORD, read_job_config, read_run_record

    config = job / "config.yaml"
    if config.is_file():
        check_config_targets(read_job_config(config), config, trusted)
    read_run_record(job / RUN_RECORD)


def check_run_argument(program: str, args: list[str]) -> None:
    """Before Hydra starts ``program run=<job or sweep folder>``: every job folder below checked by
    :func:`check_job_folder`, and for finished jobs the checkpoint the stage will read (``checkpoint=``,
    default best) loaded safely and checked to be the job's own, so a refused stage writes nothing
    (Hydra's log goes into the job folder); a refusal is one line and exit 2."""
    import sys

    from vaezoo.errors import VaezooError
    from vaezoo.jobs.folder import find_checkpoint, find_jobs

    which = next((a.split("=", 1)[1].strip("'\"") for a in args if a.startswith("checkpoint=")), "best")
    for arg in args:
        folder = Path(arg[4:].strip("'\"")).expanduser() if arg.startswith("run=") else None
        if folder is None or not folder.is_dir():
            continue
        try:
            for job in find_jobs(folder):
                check_job_folder(job.path)
                if job.status == "finished":  # the jobs the stages read (others are skipped or refused)
                    path = find_checkpoint(job.path, which)
                    check_checkpoint_owner(job.path, load_checkpoint(path), path)
        except VaezooError as err:
            print(f"{program}: error: {err}", file=sys.stderr)
            sys.exit(2)


def check_override_targets(
    overrides: list[str], source: Path, trusted: CommandLine = NOTHING_TRUSTED
) -> None:
    """Refuse stored overrides that name a foreign ``_target_`` (in a key or inside a dict or list
    value) or change Hydra's own settings; what the command line removes or names itself is trusted."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        first = " ".join(str(err).split())[:160]
        raise UnsafeInputError(
            f"refusing {source}: it holds an override Hydra cannot read ({first}); do not use this job folder"
        ) from None
    for override in parsed:
        key = override.key_or_group
        if override.is_delete() or trusted.removes(key):
            continue
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            raise UnsafeInputError(
                f"refusing {source}: it sets Hydra's own {key}, which vaezoo never stores in a job's "
                "overrides; if you did not put it there, do not use this job folder (or delete that line)"
            )
        value = override.value()
        values = value.list if hasattr(value, "list") else [value]  # a sweep's choices, each checked
        for one in values:
            for target_key, target in foreign_targets(nested(key, one)):
                if not trusted.covers(target_key, target):
                    raise refusal(source, target_key, target)


def check_checkpoint_owner(job_dir: Path, state: Any, path: Path) -> None:
    """Refuse a checkpoint that records another job's id than this job's ``run.json`` (checkpoints
    and run.json written before vaezoo recorded the id are taken as the job's own)."""
    from vaezoo.jobs.folder import RUN_RECORD, read_run_record
    from vaezoo.training.job_checkpoint import JOB_ID_KEY

    recorded = state.get(JOB_ID_KEY) if isinstance(state, dict) else None
    record = read_run_record(job_dir / RUN_RECORD)
    if recorded is None or record is None or recorded == record["wandb_id"]:
        return
    raise UnsafeInputError(
        f"refusing {path}: it was written by job {recorded}, not by this job ({record['wandb_id']} in "
        f"{job_dir / RUN_RECORD}); a job reads only its own checkpoints: use that job's own folder, or "
        "start a new run"
    )


def load_checkpoint(path: Path, fallback: str = "") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` with one-line errors: refused (code inside) or corrupt.

    ``fallback`` says what the user can load instead when the file is corrupt.
    """
    from vaezoo.data.safe_load import CARRIES_CODE, UNREADABLE_TORCH_ERRORS, CarriesObjects, load_torch_plain

    try:
        return load_torch_plain(path)
    except CarriesObjects as refused:
        raise UnsafeInputError(
            f"refusing to load {path}: {CARRIES_CODE} (it calls {refused.culprit}); load only checkpoints "
            "written by vaezoo, and delete this one if you did not make it"
        ) from None
    except PermissionError as err:
        raise ConfigError(f"cannot read {path}: permission denied; make it readable (chmod u+r)") from err
    except (*UNREADABLE_TORCH_ERRORS, OSError) as err:
        raise _corrupt(path, err, fallback) from None


def _corrupt(path: Path, err: BaseException, fallback: str) -> ConfigError:
    reason = " ".join(str(err).split())[:120]
    return ConfigError(
        f"{path} is corrupt or truncated ({type(err).__name__}: {reason}); "
        + (fallback or "delete it and use another checkpoint")
    )
