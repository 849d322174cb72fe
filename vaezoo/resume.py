"""Resuming a killed job in its own folder, as the same W&B run.

``python -m vaezoo resume=<job dir>`` becomes the job's original overrides (``.hydra/overrides.yaml``)
plus ``hydra.run.dir=<job dir>``, so the config is recomposed exactly; training continues from
``checkpoints/last.ckpt`` and the W&B run id, name and group recorded in ``run.json`` at the start.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from omegaconf import OmegaConf

from vaezoo.errors import ConfigError

RUN_RECORD = "run.json"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


def _quote(value: str) -> str:
    """A Hydra override value that may hold ``=`` and ``,`` (multirun job folders do)."""
    if "'" in value:
        raise ConfigError(f"cannot resume from a path containing a quote: {value}")
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
    if not (job / LAST_CHECKPOINT).is_file():
        raise ConfigError(f"resume={value}: no {LAST_CHECKPOINT} in {job}; the job saved no checkpoint yet")
    extra = [a for a in args if not a.startswith("resume=")]
    original = [
        str(o)
        for o in OmegaConf.load(stored)
        if not str(o).startswith(("resume=", "hydra.run.dir=")) and str(o) not in extra
    ]
    return [*original, *extra, f"resume={_quote(str(job))}", f"hydra.run.dir={_quote(str(job))}"]


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
            if path.is_file():
                record = cls(**json.loads(path.read_text()))
                record.resumed += 1
            else:  # a job from before run.json existed: continue its checkpoint under a new W&B run
                record = cls(wandb_id=secrets.token_hex(4), name=name, group=group, resumed=1)
        else:
            record = cls(wandb_id=secrets.token_hex(4), name=name, group=group)
        path.write_text(json.dumps(asdict(record), indent=2))
        return record


def last_checkpoint(job_dir: Path) -> Path:
    path = job_dir / LAST_CHECKPOINT
    if not path.is_file():
        raise ConfigError(f"nothing to resume: {path} does not exist")
    return path
