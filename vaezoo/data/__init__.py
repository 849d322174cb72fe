"""Datasets with fixed, seeded splits: in memory (one tensor on the device) or streamed by workers."""

from __future__ import annotations

import logging
from typing import Any

# Importing these registers the datasets opened as an ImageSource (and cifar10 / celeba as sources),
# and the factor-grid datasets (vaezoo.data.grid.GRIDS: cars3d ... smallnorb).
from vaezoo.data import (  # noqa: F401
    arrays,
    cars3d,
    celeba,
    cifar10,
    color_dsprites,
    image_folder,
    mpi3d,
    noisy_dsprites,
    scream_dsprites,
    shapes3d,
    smallnorb,
)
from vaezoo.data.datamodule import InMemoryDataModule
from vaezoo.data.info import DataInfo
from vaezoo.data.source import OPENERS, choose_in_memory, open_source
from vaezoo.errors import ConfigError

__all__ = ["DataInfo", "InMemoryDataModule", "build_datamodule"]

log = logging.getLogger(__name__)

_STREAMING_ONLY = ("num_workers", "pin_memory", "persistent_workers", "prefetch_factor")
# Keys of the dataset group that the data modules take; the rest go to an opened source.
_MODULE_KEYS = ("name", "root", "binarize", "batch_size", "eval_batch_size", "split_seed", "download")
_IN_MEMORY_KEYS = ("on_device",)


def build_datamodule(in_memory: bool | str = True, memory_limit_mb: float = 4096, **kwargs: Any):
    """The ``dataset`` group's target: in-memory tensors (default) or worker-streamed batches.

    ``in_memory=false`` (CelebA's default) decodes images in DataLoader worker processes every epoch
    and copies them through pinned memory; the DataLoader keys (num_workers, ...) apply only then.
    Datasets opened as an :class:`~vaezoo.data.source.ImageSource` (image_folder, arrays, cifar10,
    celeba) also take ``in_memory=auto``: in memory when the uint8 images take at most
    ``memory_limit_mb``; either way one line says what was found and where it lives.
    """
    name = kwargs.get("name")
    if name in OPENERS:
        streaming = {k: kwargs.pop(k) for k in _STREAMING_ONLY if k in kwargs}
        on_device = {k: kwargs.pop(k) for k in _IN_MEMORY_KEYS if k in kwargs}
        module = {k: kwargs[k] for k in _MODULE_KEYS if k in kwargs}
        options = {k: v for k, v in kwargs.items() if k not in _MODULE_KEYS}
        options.update(root=_root(kwargs), download=kwargs.get("download", True))
        source = open_source(name, options, split_seed=kwargs.get("split_seed", 0))
        hold = choose_in_memory(in_memory, source.nbytes, memory_limit_mb, name)
        log.info(source.describe(hold))
        if hold:
            return InMemoryDataModule(**module, **on_device, source=source)
        from vaezoo.data.streaming import StreamingDataModule

        return StreamingDataModule(**module, **streaming, source=source)
    if in_memory == "auto":
        in_memory = True  # the named datasets without an opener are small enough
    if in_memory is True:
        for key in _STREAMING_ONLY:
            kwargs.pop(key, None)
        return InMemoryDataModule(**kwargs)
    if in_memory is not False:
        raise ConfigError(f"dataset.in_memory={in_memory!r} must be true, false or auto")
    from vaezoo.data.streaming import StreamingDataModule

    kwargs.pop("on_device", None)
    return StreamingDataModule(**kwargs)


def _root(kwargs: dict[str, Any]):
    from pathlib import Path

    return Path(kwargs.get("root", "data")).expanduser()
