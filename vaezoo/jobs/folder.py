"""The one reader of job folders: evaluation, pictures, the leaderboard, the report and the table all
read finished (or failed) jobs through :func:`find_jobs` and :class:`Job`, never by globbing themselves.

A job folder is what one training job leaves (see the README's "What a run leaves behind"):
``config.yaml``, ``.hydra/overrides.yaml``, ``results.json`` or ``failed.json``, ``metrics.csv``,
``images/``, ``checkpoints/`` and ``run.json`` (its W&B run id). Reading never instantiates anything.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vaezoo.errors import ConfigError
from vaezoo.jobs.json_files import read_json as _read_json
from vaezoo.jobs.results import FILE_NAME as RESULTS
from vaezoo.jobs.results import Results, load_if_present

FAILED = "failed.json"
RUN_RECORD = "run.json"


@dataclass(frozen=True)
class Job:
    """One job folder; every property reads its file lazily and returns None when it is absent."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @cached_property
    def config(self) -> DictConfig | None:
        """The resolved config the job ran with (plain data: nothing here is instantiated).

        A job written by an older vaezoo reads in today's keys (see :func:`read_job_config`).
        """
        path = self.path / "config.yaml"
        return read_job_config(path) if path.is_file() else None

    @cached_property
    def overrides(self) -> list[str]:
        """The command-line overrides of this job (what distinguishes it within its sweep)."""
        path = self.path / ".hydra" / "overrides.yaml"
        return [str(o) for o in OmegaConf.load(path)] if path.is_file() else []

    @property
    def results(self) -> Results | None:
        """The typed report (:mod:`vaezoo.jobs.results`), or None while the job has not finished."""
        return load_if_present(self.path / RESULTS)

    @property
    def prior_results(self) -> dict[str, Any] | None:
        """The learned prior's results (``prior/results.json``, from ``python -m vaezoo.prior``)."""
        return _read_json(self.path / "prior" / RESULTS)

    @property
    def failure(self) -> dict[str, Any] | None:
        return _read_json(self.path / FAILED)

    @property
    def run_record(self) -> dict[str, Any] | None:
        """The W&B run id, name and group written at the job's start (``run.json``), checked."""
        return read_run_record(self.path / RUN_RECORD)

    @property
    def status(self) -> str:
        """``finished`` (results.json), ``failed`` (failed.json) or ``incomplete`` (neither)."""
        if self.failure is not None:
            return "failed"
        return "finished" if self.results is not None else "incomplete"

    def metrics_rows(self) -> list[dict[str, str]]:
        """Every row of ``metrics.csv`` (empty when the job logged none)."""
        path = self.path / "metrics.csv"
        if not path.is_file():
            return []
        with path.open(newline="") as f:
            return list(csv.DictReader(f))

    def images(self) -> dict[str, Path]:
        """The job's PNGs by name (``images/*.png`` without per-epoch copies)."""
        folder = self.path / "images"
        if not folder.is_dir():
            return {}
        return {p.stem: p for p in sorted(folder.glob("*.png")) if "epoch" not in p.stem}

    def write_results(self, results: Results) -> None:
        """Replace ``results.json`` atomically, as strict JSON (:meth:`Results.save`)."""
        results.save(self.path / RESULTS)


# Keys an older vaezoo wrote inside a group that now live in the run's own sections. A job's
# config.yaml is saved resolved, so the run already holds their values under the new keys (beta,
# optimizer.clip_norm, optimizer.grad_skip_threshold, eval.metrics): the old copies are dropped.
OLD_GROUP_KEYS = {
    "model": ("default_beta", "clip_norm", "grad_skip_threshold"),
    "dataset": ("eval_metrics",),
}


def read_job_config(path: Path) -> DictConfig:
    """A job folder's ``config.yaml`` in today's keys: the one place old job folders are translated.

    Only configs read back from job folders pass through here; a composed config with an old key is
    refused by the schema (vaezoo.config.schema.MOVED_KEYS), naming the new place.
    """
    cfg = OmegaConf.load(path)
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path} is not a vaezoo job config (a mapping); rerun the job")
    for section, keys in OLD_GROUP_KEYS.items():
        node = cfg.get(section)
        if isinstance(node, DictConfig):
            for key in keys:
                node.pop(key, None)
    return cfg


# A W&B run id (also the job's id in its checkpoints): it names folders, so no separators or dots.
RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
REQUIRED_RUN_KEYS = {"wandb_id", "name", "group"}
RUN_RECORD_TYPES = {"wandb_id": (str,), "name": (str,), "group": (str, type(None)), "resumed": (int,)}


def read_run_record(path: Path) -> dict[str, Any] | None:
    """``run.json`` as data, its keys and types checked (None when absent): its id names W&B folders
    and identifies the job's checkpoints, so a crafted one is refused rather than used."""
    record = _read_json(path)
    if record is None:
        return None
    problem = None
    if not isinstance(record, dict) or set(record) - set(RUN_RECORD_TYPES) or REQUIRED_RUN_KEYS - set(record):
        problem = f"its keys must be {', '.join(RUN_RECORD_TYPES)}"
    else:
        wrong = [
            k for k, v in record.items() if not isinstance(v, RUN_RECORD_TYPES[k]) or isinstance(v, bool)
        ]
        if wrong:
            problem = f"{wrong[0]} has the wrong type"
        elif not RUN_ID.fullmatch(record["wandb_id"]):
            problem = "wandb_id must be 1-64 letters, digits, - or _"
    if problem:
        raise ConfigError(f"{path} is not a vaezoo run record ({problem}); delete it or rerun the job")
    return record


def is_job_folder(path: Path) -> bool:
    return (path / "config.yaml").is_file() and (path / ".hydra").is_dir()


def find_jobs(folder: str | Path) -> list[Job]:
    """The job folder itself, or every job folder below a sweep or runs folder, in a stable order."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder; give a job folder, a sweep folder or a runs folder")
    if is_job_folder(folder):
        return [Job(folder)]
    jobs = sorted(
        {p.parent.parent for p in folder.rglob(".hydra/config.yaml") if is_job_folder(p.parent.parent)},
        key=_job_order,
    )
    return [Job(p) for p in jobs]


def _job_order(path: Path) -> tuple[str, int, str]:
    """Sweep folder first, then the job number Hydra put at the start of the subfolder's name."""
    head = path.name.split("_", 1)[0]
    return (str(path.parent), int(head) if head.isdigit() else -1, path.name)


def find_checkpoint(job_dir: Path, which: str = "best") -> Path:
    """``best`` (highest validation ELBO), ``last``, or a path to a .ckpt file."""
    if which not in ("best", "last"):
        path = Path(which)
        if not path.is_file():
            raise ConfigError(f"checkpoint {which} not found; use best, last or a path to a .ckpt file")
        return path
    folder = job_dir / "checkpoints"
    candidates = sorted(folder.glob("best-*.ckpt")) if which == "best" else []
    if not candidates and (folder / "last.ckpt").is_file():
        candidates = [folder / "last.ckpt"]
    if not candidates:
        raise ConfigError(f"no checkpoint in {folder}; is {job_dir} a finished vaezoo job folder?")
    return candidates[-1]
