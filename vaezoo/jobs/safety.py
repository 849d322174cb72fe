"""Loading what a job folder holds without running anything from it.

Checkpoints and priors load with ``torch.load(weights_only=True)``: tensors, numbers and strings
only, so a crafted file cannot execute code while unpickling. Configs read from a job folder
(``config.yaml``, ``.hydra/overrides.yaml``) may name as ``_target_`` only vaezoo's own classes and
Lightning's callbacks; anything else is refused with one line naming the key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from vaezoo.errors import ConfigError, UnsafeInputError

ALLOWED_TARGETS = ("vaezoo.", "lightning.pytorch.callbacks.")


def _is_allowed(target: str) -> bool:
    return target.startswith(ALLOWED_TARGETS)


def foreign_targets(node: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(key, target) for every ``_target_`` in a config tree outside the allow-list."""
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=False)
    if isinstance(node, ListConfig):
        node = OmegaConf.to_container(node, resolve=False)
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_target_" and not _is_allowed(str(value)):
                yield path, str(value)
            else:
                yield from foreign_targets(value, path)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from foreign_targets(value, f"{prefix}[{i}]")


def _refusal(source: Path, key: str, target: str) -> UnsafeInputError:
    return UnsafeInputError(
        f"refusing {source}: {key}={target} is not a vaezoo class or Lightning callback, and configs read "
        "from job folders may build only those; remove that entry if you did not put it there"
    )


def check_config_targets(cfg: Any, source: Path) -> None:
    """Refuse a config read from a job folder that would instantiate a foreign class."""
    for key, target in foreign_targets(cfg):
        raise _refusal(source, key, target)


def check_override_targets(overrides: list[str], source: Path, dropped: set[str] = frozenset()) -> None:
    """Refuse stored overrides that set a foreign ``_target_`` (unless the command line removes that key)."""
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if key.endswith("_target_") and not _is_allowed(value.strip("'\"")):
            owner = key.rsplit(".", 1)[0]
            if not any(owner == d or owner.startswith(d + ".") for d in dropped):
                raise _refusal(source, key, value)


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
