"""``results.json``: one typed schema, written and read only here.

A finished job's report is a :class:`Results`. Every writer (the end of training, the evaluation stage)
calls :meth:`Results.save` and every reader (the job folder, the leaderboard, the HTML report,
``reproduce=``) calls :func:`load`, so a new field is added in one place. The file carries
``schema_version``: files written before it existed are version 0 and still load (their fields are the
same); a file from a newer vaezoo is refused with one line instead of being half understood.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vaezoo.errors import ConfigError
from vaezoo.jobs.json_files import write_json_atomically

#: The version this code writes. Raise it (and say how older files map) when a field changes meaning.
SCHEMA_VERSION = 1
FILE_NAME = "results.json"


@dataclass
class Results:
    """One job's report: what ran, its test section, its registered metrics and where it ran.

    ``test`` is the test-set report (:func:`vaezoo.evaluation.held_out.evaluate`) and ``metrics`` the
    registered metrics ({name: {"values" | "value" | "skipped", ...}}); both are written by the
    post-fit evaluation (:mod:`vaezoo.post_fit`). Keys this version does not name (written by a plug-in,
    say) are kept in ``extra`` and written back unchanged.
    """

    model: str | None = None
    dataset: str | None = None
    likelihood: str | None = None
    kl: str | None = None
    beta: float | None = None
    seed: int | None = None
    test: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    best_val_elbo_nats: float | None = None
    epochs: int | None = None
    steps: int | None = None
    train_seconds: float | None = None
    device: str | None = None
    world_size: int | None = None
    global_batch_size: int | None = None
    resumed: bool = False
    checkpoints: dict[str, Any] = field(default_factory=dict)
    job_dir: str | None = None
    environment: dict[str, Any] | None = None
    lr_schedule: dict[str, Any] | None = None
    paper: dict[str, Any] | None = None
    reproduction: dict[str, Any] | None = None
    nulls: dict[str, str] | None = None  # why a value is null (a NaN or infinity JSON cannot hold)
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: ``schema_version`` first, unset optional sections left out, extras last."""
        data = asdict(self)
        extra = data.pop("extra")
        version = data.pop("schema_version")
        optional = ("paper", "reproduction", "nulls")
        body = {k: v for k, v in data.items() if not (k in optional and v is None)}
        return {"schema_version": version, **body, **extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = FILE_NAME) -> Results:
        """A Results from a parsed results.json of any known version (no version: version 0)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source} is not a JSON object; delete it or rerun the job")
        version = data.get("schema_version", 0)
        if not isinstance(version, int) or version < 0:
            raise ConfigError(f"{source} has schema_version={version!r}, not a whole number; rerun the job")
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"{source} has results schema version {version}, newer than this vaezoo reads "
                f"(up to {SCHEMA_VERSION}); upgrade vaezoo to read it"
            )
        known = {f.name for f in fields(cls)} - {"extra", "schema_version"}
        values = {k: v for k, v in data.items() if k in known}
        for section in ("test", "metrics", "checkpoints"):  # version 0 files may hold null here
            if values.get(section) is None:
                values.pop(section, None)
        check_field_types(values, source)
        extra = {k: v for k, v in data.items() if k not in known and k != "schema_version"}
        return cls(**values, extra=extra)  # a version 0 file becomes version 1 when saved again

    def save(self, path: str | Path) -> Path:
        """Write atomically as strict JSON (a NaN becomes null, with its reason under ``nulls``)."""
        path = Path(path)
        write_json_atomically(path, self.to_dict())
        return path

    def metric_values(self, name: str) -> dict[str, Any]:
        """The values of registered metric ``name`` ({} when it did not run or was skipped)."""
        entry = self.metrics.get(name) or {}
        return dict(entry.get("values") or {})


_OBJECTS = ("test", "metrics", "checkpoints", "environment", "lr_schedule", "paper", "reproduction", "nulls")
_TEXTS = ("model", "dataset", "likelihood", "kl", "device", "job_dir")
_NUMBERS = ("beta", "seed", "best_val_elbo_nats", "epochs", "steps", "train_seconds", "world_size")


def check_field_types(values: dict[str, Any], source: str) -> None:
    """Refuse a results.json whose known keys hold the wrong kind of value (a hand-edited or damaged
    file), in one line, before anything reads a section of it."""
    for key, value in values.items():
        if value is None:
            continue
        wrong = (
            (key in _OBJECTS and not isinstance(value, dict))
            or (key in _TEXTS and not isinstance(value, str))
            or (key in _NUMBERS and (isinstance(value, bool) or not isinstance(value, (int, float))))
        )
        if wrong:
            raise ConfigError(
                f"{source} is damaged: {key} is {json.dumps(value)[:40]}, which is not what vaezoo writes "
                "there; restore the file from the job's original or rerun the job"
            )


def load(path: str | Path) -> Results:
    """Read a results.json (any known version); a clear one-line ConfigError when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found; is {path.parent} a finished vaezoo job folder?")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON ({err}); delete it or rerun the job") from None
    return Results.from_dict(data, source=str(path))


def load_if_present(path: str | Path) -> Results | None:
    """:func:`load`, or None when the file does not exist (a job still running, or failed)."""
    return load(path) if Path(path).is_file() else None
