"""What a case of the bad-input catalogue is (tests/test_bad_inputs.py runs them all).

The catalogue is one list; parts of it live in ``tests/cases_<area>.py`` modules, each with a
``CASES`` list of :class:`Case`, collected by :func:`more_cases` so a new part is one new file.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import TINY

FAST = [*TINY, "logger=csv", "trainer.max_epochs=1"]
ON_CPU = [a for a in FAST if not a.startswith("dataset=")]  # with another dataset
NO_HARDWARE = [a for a in FAST if not a.startswith("hardware=")]
MARKER = "UNPICKLED_MARKER"
# An online W&B whose server refuses connections at once (nothing listens on port 9).
UNREACHABLE_WANDB = {"WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_API_KEY": "a" * 40}


@dataclass
class Case:
    """One bad input: command-line args ({job}, {copy}, {data}, {runs} are filled in per case)."""

    id: str
    args: list[str]
    expect: tuple[str, ...]  # words the last stderr line must contain
    status: int = 2
    prepare: Callable[[Path, Path], None] | None = None  # (copy of the job, data folder)
    module: str = "vaezoo"
    env: dict[str, str] = field(default_factory=dict)
    check: Callable[[Path], None] | None = None  # given the runs folder, after the run
    # Why this machine cannot make the fault (e.g. mounting needs root), or None: the case is skipped
    # with that reason, never passed.
    cannot_run: Callable[[], str | None] | None = None
    # Undoes what prepare made outside the files (unmounts a tmpfs or a read-only bind mount); given the
    # case's temporary folder, called whether the case passed or failed.
    cleanup: Callable[[Path], None] | None = None


def more_cases() -> list[Case]:
    """Every ``CASES`` of ``tests/cases_*.py``, in file-name order."""
    found: list[Case] = []
    for path in sorted(Path(__file__).parent.glob("cases_*.py")):
        found += importlib.import_module(f"tests.{path.stem}").CASES
    return found


def failed_json_names(*words: str) -> Callable[[Path], None]:
    """A check that the run recorded its failure (failed.json holds ``words``) and wrote no results."""

    def check(runs: Path) -> None:
        (failed,) = list(runs.rglob("failed.json"))
        error = json.loads(failed.read_text())["error"]
        assert all(w in error for w in words), error
        assert not list(runs.rglob("results.json"))

    return check


def folder_hash(folder: Path) -> str:
    """A digest of every file's name and bytes under ``folder``: equal before and after means untouched."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
