"""Strict JSON files in job folders: written atomically (never half-written), NaN kept out.

JSON has no NaN or Infinity; Python's json module writes them anyway, and other readers then refuse
the whole file. results.json (through :mod:`vaezoo.jobs.results`), failed.json and the classifier's
record are written here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from vaezoo.errors import ConfigError


def strict_json(data: Any) -> Any:
    """``data`` with every NaN or infinity replaced by null, and the reasons listed under ``"nulls"``.

    JSON has no NaN or Infinity; Python's json module writes them anyway, and other readers then
    refuse the whole file. A top-level ``"nulls": {"test.iw_bound_nats": "NaN"}`` says why a value is
    missing.
    """
    reasons: dict[str, str] = {}

    def clean(value: Any, path: str) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            reasons[path] = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
            return None
        if isinstance(value, dict):
            return {k: clean(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    out = clean(data, "")
    if reasons and isinstance(out, dict):
        out["nulls"] = {**out.get("nulls", {}), **reasons}
    return out


def write_json_atomically(target: Path, data: Any) -> None:
    """Strict JSON into a temporary file, then renamed over ``target`` (never half-written)."""
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(json.dumps(strict_json(data), indent=2, allow_nan=False))
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON ({err}); delete it or rerun the job") from None
