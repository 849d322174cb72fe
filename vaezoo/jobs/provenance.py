"""What reproducing a job needs: the code, the lock, the libraries and the machine it ran on.

Every job records :func:`environment` in its ``results.json``; ``python -m vaezoo reproduce=<job>``
compares the recorded one with the current one before it runs (:func:`environment_differences`) and
the two jobs' results after (:func:`compare_results`).
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

CHECKOUT = Path(__file__).resolve().parents[2]
# What differs between machines without changing what was computed: not reasons to warn.
INCIDENTAL = ("hostname",)


def lock_file() -> Path | None:
    """constraints.txt: ``VAEZOO_LOCK`` (set in the container image), else the checkout's."""
    env = os.environ.get("VAEZOO_LOCK")
    for candidate in [Path(env)] if env else [CHECKOUT / "constraints.txt"]:
        if candidate.is_file():
            return candidate
    return None


def git_commit() -> dict[str, Any] | None:
    """The checkout's commit and whether tracked files differ from it (None outside a git checkout)."""
    if not (CHECKOUT / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=CHECKOUT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=CHECKOUT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty)}


def environment(device: str | None = None) -> dict[str, Any]:
    """The record stored as ``results.json``'s ``environment``."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    try:
        vaezoo_version = version("vaezoo")
    except PackageNotFoundError:
        vaezoo_version = None
    lock = lock_file()
    return {
        "vaezoo": vaezoo_version,
        "git": git_commit(),
        "lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest() if lock else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
        "hostname": platform.node(),
        "container": os.environ.get("VAEZOO_CONTAINER") == "1" or Path("/.dockerenv").exists(),
    }


def environment_differences(recorded: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """One line per recorded setting that differs now (the lock first: it decides every library)."""
    if not recorded:
        return ["the original job recorded no environment (it ran before vaezoo recorded one)"]
    lines = []
    if recorded.get("lock_sha256") != current.get("lock_sha256"):
        lines.append(
            f"lock file changed: constraints.txt hash {str(recorded.get('lock_sha256'))[:12]} then, "
            f"{str(current.get('lock_sha256'))[:12]} now (library versions may differ)"
        )
    for key in ("vaezoo", "git", "torch", "cuda", "python", "device", "gpu", "container"):
        if key in recorded and recorded[key] != current.get(key):
            lines.append(f"{key}: {recorded[key]} then, {current.get(key)} now")
    return lines


def _numbers(report: Any, prefix: str = "") -> dict[str, float]:
    """Every numeric leaf of a results dict, by dotted key (booleans and bookkeeping excluded)."""
    out: dict[str, float] = {}
    if isinstance(report, dict):
        for key, value in report.items():
            if key in ("environment", "reproduction", "job_dir", "checkpoints", "train_seconds"):
                continue
            out.update(_numbers(value, f"{prefix}{key}."))
    elif isinstance(report, (int, float)) and not isinstance(report, bool):
        out[prefix[:-1]] = float(report)
    return out


def compare_results(
    original: dict[str, Any], new: dict[str, Any], rel_tol: float = 1e-3
) -> list[dict[str, Any]]:
    """Metric-by-metric rows: original, new, difference, and whether they agree.

    ``identical`` means bit-identical floats (what a deterministic CPU rerun gives); otherwise
    ``within`` means within ``rel_tol`` relative difference, ``differs`` beyond it. Timings are left
    out (``seconds`` keys), since they never repeat.
    """
    before, after = _numbers(original), _numbers(new)
    rows = []
    for key in sorted(before.keys() & after.keys()):
        if "seconds" in key:
            continue
        a, b = before[key], after[key]
        if a == b or (math.isnan(a) and math.isnan(b)):
            status = "identical"
        elif math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-12):
            status = "within"
        else:
            status = "differs"
        rows.append({"metric": key, "original": a, "reproduced": b, "difference": b - a, "status": status})
    return rows
