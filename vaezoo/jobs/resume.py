"""Resuming a killed job in its own folder, as the same W&B run.

``python -m vaezoo resume=<job dir>`` becomes the job's original overrides (``.hydra/overrides.yaml``)
plus ``hydra.run.dir=<job dir>``, so the config is recomposed exactly; training continues from
``checkpoints/last.ckpt`` and the W&B run id, name and group recorded in ``run.json`` at the start.

Nothing in the job folder changes until the resumed run has loaded: the stored overrides are checked
against the allow-list of ``_target_``s, the new config against the stored one
(:func:`check_compatible`), the checkpoint is loaded once (weights only), and Hydra is told not to
rewrite ``.hydra/`` (``hydra.output_subdir=null``); :mod:`vaezoo.stages.train` writes the job's config
files once the checkpoint is in the model.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from vaezoo.config.targets import CommandLine
from vaezoo.errors import ConfigError
from vaezoo.jobs.folder import read_job_config, read_run_record
from vaezoo.jobs.safety import (
    check_checkpoint_owner,
    check_job_folder,
    check_override_targets,
    load_checkpoint,
)

log = logging.getLogger("vaezoo")

RUN_RECORD = "run.json"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


def quote_path(value: str, verb: str = "resume") -> str:
    """A Hydra override value that may hold ``=`` and ``,`` (multirun job folders do)."""
    if "'" in value:
        raise ConfigError(f"cannot {verb} from a path containing a quote: {value}")
    return f"'{value}'"


def resume_argv(args: list[str]) -> list[str]:
    """Command-line overrides with ``resume=<job dir>`` expanded into the job's own overrides.

    Arguments other than ``resume=`` are kept and win over the stored ones (e.g. a larger
    ``trainer.max_epochs`` to train further). Without ``resume=`` the arguments are returned unchanged.
    """
    given = [a for a in args if a.startswith("resume=")]
    if not given:
        return args
    value = given[-1].split("=", 1)[1].strip("'\"")
    if value in ("", "null"):
        return [a for a in args if not a.startswith("resume=")]
    if "-m" in args or "--multirun" in args:
        raise ConfigError("resume= continues one job; drop -m (resume each job of a sweep on its own)")
    job = Path(value).expanduser().resolve()
    stored = job / ".hydra" / "overrides.yaml"
    if not stored.is_file():
        raise ConfigError(
            f"resume={value}: {stored} not found; point resume at a job folder (the one with .hydra/ and "
            "checkpoints/)"
        )
    if not (job / LAST_CHECKPOINT).is_file() and not _best_checkpoints(job):
        raise ConfigError(f"resume={value}: no {LAST_CHECKPOINT} in {job}; the job saved no checkpoint yet")
    extra = [a for a in args if not a.startswith("resume=")]
    original = [
        str(o)
        for o in OmegaConf.load(stored)
        if not str(o).startswith(("resume=", "hydra.run.dir=", "hydra.output_subdir="))
        and str(o) not in extra
    ]
    trusted = CommandLine.of(extra)  # what this command line removes or names itself is the user's choice
    check_override_targets(original, stored, trusted)
    check_job_folder(job, trusted)
    return [
        *original,
        *extra,
        f"resume={quote_path(str(job))}",
        f"hydra.run.dir={quote_path(str(job))}",
        "hydra.output_subdir=null",  # .hydra/ is rewritten by train() only once the checkpoint has loaded
    ]


def slurm_requeued_job(args: list[str]) -> Path | None:
    """Under SLURM, after a requeue: the folder this same command ran in before, to resume it.

    Lightning's SLURM support saves a checkpoint on the requeue signal (SIGUSR1) and runs
    ``scontrol requeue``; SLURM then stops the job (SIGTERM: vaezoo saves ``last.ckpt``) and later
    starts the same batch script again with ``SLURM_RESTART_COUNT`` >= 1. Each command of that script
    finds its own unfinished folder (``<time>-slurm<job id>`` with the same overrides) and continues it.
    """
    import os

    from vaezoo.paths import unique_suffix

    if int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) < 1 or any(a.startswith("resume=") for a in args):
        return None
    runs = next((a.split("=", 1)[1] for a in args if a.startswith("paths.runs=")), None)
    runs_dir = Path(runs or os.environ.get("VAEZOO_RUNS", "runs")).expanduser()
    wanted = sorted(a for a in args if not a.startswith(("-", "hydra.", "paths.")))
    candidates = sorted(runs_dir.glob(f"*-{unique_suffix()}"), key=lambda p: p.name, reverse=True)
    for job in candidates:
        stored = job / ".hydra" / "overrides.yaml"
        if (job / "results.json").exists() or not stored.is_file():
            continue
        mine = sorted(str(o) for o in OmegaConf.load(stored) if not str(o).startswith(("hydra.", "paths.")))
        if mine == wanted and ((job / LAST_CHECKPOINT).is_file() or _best_checkpoints(job)):
            return job
    return None


# Keys that decide the shapes of the saved weights: changing them on resume cannot load the checkpoint.
ARCHITECTURE_KEYS = ("model", "likelihood", "dataset.name")


def _flat(node: object, prefix: str = "") -> dict[str, object]:
    if isinstance(node, dict):
        out: dict[str, object] = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: node}


def check_compatible(job: Path, cfg: DictConfig) -> None:
    """Refuse a resume whose overrides change the architecture the job's checkpoint was saved with."""
    stored_path = job / "config.yaml"
    if not stored_path.is_file():
        return
    stored = read_job_config(stored_path)  # plain data; the resumed job is built from the overrides
    old = _flat(OmegaConf.to_container(stored, resolve=False))
    new = _flat(OmegaConf.to_container(cfg, resolve=True))
    for key in sorted(set(old) | set(new)):
        if not key.startswith(ARCHITECTURE_KEYS):
            continue
        if old.get(key) != new.get(key):
            raise ConfigError(
                f"resume={job} cannot change {key} ({_show(old.get(key))} -> {_show(new.get(key))}): the "
                "checkpoint was saved with the old architecture; drop that override, or start a new run"
            )


def _show(value: object) -> str:
    return "unset" if value is None else str(value)


def check_checkpoint(job: Path) -> None:
    """Load the checkpoint a resume would continue from (weights only), and check that it and the best
    checkpoint it names are this job's own (:func:`check_own_checkpoints`); one line if not."""
    path = last_checkpoint(job)
    check_own_checkpoints(job, load_checkpoint(path, fallback=corrupt_checkpoint_fallback(job)), path)


def check_own_checkpoints(job: Path, state: dict, path: Path) -> None:
    """Before a resume writes anything: ``path`` (the checkpoint it continues) and the best checkpoint
    it names are this job's own, found by file name in the job's own ``checkpoints/`` folder.

    The absolute path Lightning stored is a hint only (a moved or copied runs folder resumes); a best
    checkpoint missing from the folder, or written by another job, is refused in one line.
    """
    check_checkpoint_owner(job, state, path)
    folder = job / "checkpoints"
    for key, callback in (state.get("callbacks") or {}).items():
        if not str(key).startswith("ModelCheckpoint") or not isinstance(callback, dict):
            continue
        stored = callback.get("best_model_path")
        if not stored:
            continue
        own = folder / Path(str(stored)).name
        if not own.is_file():
            raise ConfigError(
                f"resume={job}: {path.name} names its best checkpoint {stored}, but no {own.name} is in "
                f"this job's folder {folder}; a job reads only its own checkpoints: put this job's "
                f"{own.name} back there, or start a new run"
            )
        if own.resolve() != path.resolve():
            check_checkpoint_owner(job, load_checkpoint(own, fallback=corrupt_checkpoint_fallback(job)), own)
        if Path(str(stored)) != own:
            log.info(
                "%s recorded its best checkpoint as %s; using %s of this job's folder",
                path.name,
                stored,
                own,
            )


def _best_checkpoints(job: Path) -> list[Path]:
    return sorted((job / "checkpoints").glob("best-*.ckpt"), key=lambda p: p.stat().st_mtime)


def corrupt_checkpoint_fallback(job: Path) -> str:
    best = _best_checkpoints(job)
    last = job / LAST_CHECKPOINT
    if best:
        return (
            f"the best checkpoint {best[-1].name} is intact: move the broken file aside (mv {last} "
            f"{last}.corrupt) and resume again to continue from it"
        )
    return f"no other checkpoint is left; delete {last} and start the job again"


@dataclass
class RunRecord:
    """What a job keeps constant across resumes: its W&B run id, name and group."""

    wandb_id: str
    name: str
    group: str | None
    resumed: int = 0

    @classmethod
    def start_or_resume(cls, job_dir: Path, resume: str | None, name: str, group: str | None) -> RunRecord:
        """A fresh record written to ``job_dir/run.json``, or the stored one when resuming."""
        path = job_dir / RUN_RECORD
        if resume:
            if Path(resume).expanduser().resolve() != job_dir.resolve():
                raise ConfigError(
                    f"resume={resume} but this job's folder is {job_dir}; resume with "
                    "`python -m vaezoo resume=<job dir>`, which runs the job in its own folder"
                )
            stored = read_run_record(path)
            if stored is not None:
                record = cls(**stored)
                record.resumed += 1
            else:  # run.json lost, or a job from before it existed: the checkpoint's id, else a new one
                job_id = checkpoint_job_id(job_dir) or secrets.token_hex(4)
                record = cls(wandb_id=job_id, name=name, group=group, resumed=1)
        else:
            record = cls(wandb_id=secrets.token_hex(4), name=name, group=group)
        path.write_text(json.dumps(asdict(record), indent=2))
        return record


def checkpoint_job_id(job_dir: Path) -> str | None:
    """The job id recorded in the checkpoint a resume continues from (None for older checkpoints), so
    a job whose run.json was lost keeps the id its best checkpoints carry."""
    from vaezoo.jobs.folder import RUN_ID
    from vaezoo.training.job_checkpoint import JOB_ID_KEY

    recorded = load_checkpoint(last_checkpoint(job_dir)).get(JOB_ID_KEY)
    return recorded if isinstance(recorded, str) and RUN_ID.fullmatch(recorded) else None


def last_checkpoint(job_dir: Path) -> Path:
    """``last.ckpt``, or when it was moved aside (corrupt), the newest best checkpoint."""
    path = job_dir / LAST_CHECKPOINT
    if path.is_file():
        return path
    best = _best_checkpoints(job_dir)
    if best:
        return best[-1]
    raise ConfigError(f"nothing to resume: {path} does not exist")
