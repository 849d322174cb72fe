"""Datasets with fixed, seeded splits: in memory (one tensor on the device) or streamed by workers."""

from __future__ import annotations

from typing import Any

from vaezoo.data.datamodule import InMemoryDataModule
from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError

__all__ = ["DataInfo", "InMemoryDataModule", "build_datamodule"]

_STREAMING_ONLY = ("num_workers", "pin_memory", "persistent_workers", "prefetch_factor")


def build_datamodule(in_memory: bool = True, **kwargs: Any):
    """The ``dataset`` group's target: in-memory tensors (default) or worker-streamed batches.

    ``in_memory=false`` (CelebA's default) decodes images in DataLoader worker processes every epoch
    and copies them through pinned memory; the DataLoader keys (num_workers, ...) apply only then.
    """
    if in_memory:
        if kwargs.pop("image_size", 64) != 64:
            raise ConfigError("dataset.image_size applies to streamed CelebA; set dataset.in_memory=false")
        for key in _STREAMING_ONLY:
            kwargs.pop(key, None)
        return InMemoryDataModule(**kwargs)
    from vaezoo.data.streaming import StreamingDataModule

    kwargs.pop("on_device", None)
    return StreamingDataModule(**kwargs)
