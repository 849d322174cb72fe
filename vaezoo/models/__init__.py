"""The model registry: name -> model class.

Each module in this package registers its models with :func:`register` when imported, and every
module here is imported below, so a new model is one file here plus one YAML in ``conf/model/``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Mapping
from typing import Any, TypeVar

from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.likelihoods import Likelihood
from vaezoo.models.base import ELBOTerms, VAEModel

__all__ = ["MODELS", "ELBOTerms", "VAEModel", "build_model", "register"]

MODELS: dict[str, type[VAEModel]] = {}

M = TypeVar("M", bound=type[VAEModel])


def register(name: str):
    """Class decorator that adds a model to the registry under ``name``."""

    def add(cls: M) -> M:
        if name in MODELS and MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} registered twice ({MODELS[name]} and {cls})")
        MODELS[name] = cls
        return cls

    return add


def build_model(
    name: str, params: Mapping[str, Any], data_info: DataInfo, likelihood: Likelihood
) -> VAEModel:
    """Instantiate a registered model, with one-line errors for unknown names and parameters."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; registered models: {', '.join(sorted(MODELS))}")
    cls = MODELS[name]
    accepted = inspect.signature(cls.__init__).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        allowed = sorted(k for k in accepted if k not in ("self", "data_info", "likelihood"))
        raise ConfigError(
            f"model={name} does not take {', '.join(unknown)}; its parameters are: {', '.join(allowed)}"
        )
    cls.check_compatible(data_info, likelihood, name)
    return cls(data_info=data_info, likelihood=likelihood, **params)


def _import_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_import_all()
