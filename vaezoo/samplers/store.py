"""Fitted samplers in the job folder: ``<job>/samplers/<name>.pt`` and ``<name>.json``, data only.

The ``.pt`` file holds the sampler's tensors alone (a flat {name: tensor} mapping, read with
``torch.load(weights_only=True)``); the ``.json`` file holds what rebuilds it (the registered name and
its constructor's numbers and strings), the fit's report and the SHA-256 of the tensor file. Loading
checks all of it (the digest, the names, shapes and types of the tensors, that every value is finite,
and that the latent size is the model's), so a tampered, truncated or foreign file is refused in one
line instead of being half used. No code is stored or run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from vaezoo.errors import ConfigError, UnsafeInputError
from vaezoo.jobs.json_files import write_json_atomically
from vaezoo.jobs.safety import load_checkpoint
from vaezoo.samplers import LatentSampler, PerLabelSampler, load_samplers, sampler_entry

FOLDER = "samplers"
FORMAT = "vaezoo-latent-sampler"
VERSION = 1
RECORD_KEYS = {"format", "version", "sampler", "hparams", "tensors_sha256", "fit"}


def sampler_paths(job_dir: str | Path, name: str) -> tuple[Path, Path]:
    """(tensors, record) of the fitted sampler ``name`` in a job folder."""
    folder = Path(job_dir) / FOLDER
    return folder / f"{name}.pt", folder / f"{name}.json"


def fit_command(job_dir: str | Path, name: str) -> str:
    return f"python -m vaezoo.sampler run={job_dir} sampler={name}"


def save_sampler(job_dir: str | Path, sampler: LatentSampler, fit: dict[str, Any]) -> tuple[Path, Path]:
    """Write the sampler's tensors, then its record (digest last: a half-written pair never loads)."""
    tensors_path, record_path = sampler_paths(job_dir, sampler.name)
    tensors_path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu().contiguous() for key, value in sampler.state_dict().items()}
    tmp = tensors_path.with_name(f".{tensors_path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(tensors_path)
    record = {
        "format": FORMAT,
        "version": VERSION,
        "sampler": sampler.name,
        "hparams": sampler.hparams,
        "tensors_sha256": hashlib.sha256(tensors_path.read_bytes()).hexdigest(),
        "fit": fit,
    }
    write_json_atomically(record_path, record)
    return tensors_path, record_path


def stored_samplers(job_dir: str | Path) -> list[str]:
    """The registered samplers fitted for this job (those with a record), in the registry's order."""
    return [name for name in load_samplers() if sampler_paths(job_dir, name)[1].is_file()]


def read_record(record_path: Path) -> dict[str, Any]:
    """The checked JSON record of a stored sampler (one-line ConfigError when it is not one)."""
    try:
        record = json.loads(record_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(
            f"{record_path} is not valid JSON ({type(err).__name__}); {_refit(record_path)}"
        ) from None
    if not isinstance(record, dict) or set(record) != RECORD_KEYS:
        raise ConfigError(
            f"{record_path} is not a vaezoo sampler record (its keys must be "
            f"{', '.join(sorted(RECORD_KEYS))}); " + _refit(record_path)
        )
    if record["format"] != FORMAT or record["version"] != VERSION:
        raise ConfigError(
            f"{record_path} has format {record['format']!r} version {record['version']!r}, not {FORMAT!r} "
            f"version {VERSION}; {_refit(record_path)}"
        )
    hparams = record["hparams"]
    plain = isinstance(hparams, dict) and all(
        isinstance(v, (int, float, str)) and not isinstance(v, bool) for v in hparams.values()
    )
    if not plain or not isinstance(record["tensors_sha256"], str) or not isinstance(record["fit"], dict):
        raise ConfigError(
            f"{record_path} is damaged (hparams, tensors_sha256 or fit has the wrong type); "
            + _refit(record_path)
        )
    return record


def load_sampler(job_dir: str | Path, name: str, dim: int | None = None) -> LatentSampler:
    """The sampler ``name`` fitted for this job, checked; ``dim`` (the model's latent size) must match."""
    entry = sampler_entry(name)
    tensors_path, record_path = sampler_paths(job_dir, name)
    if not record_path.is_file() or not tensors_path.is_file():
        raise ConfigError(
            f"no fitted sampler {name} in {Path(job_dir) / FOLDER}; "
            f"fit it with `{fit_command(job_dir, name)}`"
        )
    record = read_record(record_path)
    if record["sampler"] != name:
        raise ConfigError(
            f"{record_path} holds sampler {record['sampler']!r}, not {name!r}; {_refit(record_path)}"
        )
    digest = hashlib.sha256(tensors_path.read_bytes()).hexdigest()
    if digest != record["tensors_sha256"]:
        raise UnsafeInputError(
            f"refusing {tensors_path}: its SHA-256 is not the one its record {record_path.name} gives "
            "(the file "
            f"was changed after fitting); {_refit(record_path)}"
        )
    try:
        hparams = record["hparams"]
        sampler = (
            PerLabelSampler.from_hparams(entry.cls, hparams) if "labels" in hparams else entry.cls(**hparams)
        )
    except (TypeError, ValueError, KeyError, ConfigError) as err:
        reason = " ".join(str(err).split())[:120]
        raise ConfigError(
            f"{record_path} has hparams {name} cannot be built from ({reason}); {_refit(record_path)}"
        ) from None
    state = load_checkpoint(tensors_path, fallback=_refit(record_path))
    expected = sampler.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        raise ConfigError(
            f"{tensors_path} does not hold the tensors of a {name} sampler; {_refit(record_path)}"
        )
    for key, value in state.items():
        want = expected[key]
        if not isinstance(value, torch.Tensor) or value.shape != want.shape or value.dtype != want.dtype:
            raise ConfigError(
                f"{tensors_path}: tensor {key} is not a {want.dtype} tensor of shape {tuple(want.shape)}; "
                + _refit(record_path)
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ConfigError(
                f"{tensors_path}: tensor {key} holds NaN or infinite values; {_refit(record_path)}"
            )
    sampler.load_state_dict(state)
    if dim is not None and sampler.dim != dim:
        raise ConfigError(
            f"{tensors_path} draws {sampler.dim}-unit codes but the job's model has {dim}; "
            + _refit(record_path)
        )
    return sampler.eval()


def _refit(record_path: Path) -> str:
    job_dir = record_path.parent.parent
    return f"delete it and refit with `{fit_command(job_dir, record_path.stem)}`"
