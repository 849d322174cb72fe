"""Datasets as in-memory tensors with fixed, seeded splits."""

from vaezoo.data.datamodule import InMemoryDataModule
from vaezoo.data.info import DataInfo

__all__ = ["DataInfo", "InMemoryDataModule"]
