"""Datasets that are opened before they are read: image folders, array files, CIFAR-10 and CelebA.

An :class:`ImageSource` knows its splits, shape, labels and factors after a cheap look at the files
(headers, array shapes), so :func:`vaezoo.data.build_datamodule` can say what it found and decide
whether the decoded uint8 images fit in memory before anything is decoded. It then either decodes
everything once (:meth:`ImageSource.load`, for the in-memory module) or hands per-image datasets to
DataLoader workers (:meth:`ImageSource.datasets`, for the streaming module).
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from vaezoo.data.sources import Splits
from vaezoo.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


@dataclass
class SplitIndex:
    """Which items of a source form each split (indices into the source's items, in order)."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def __getitem__(self, split: str) -> np.ndarray:
        return getattr(self, split)


def split_count(size: float, n: int, key: str) -> int:
    """``size`` as a count of n items: a fraction in (0, 1) or a whole number >= 1."""
    if isinstance(size, bool) or not isinstance(size, int | float) or size <= 0:
        raise ConfigError(f"dataset.{key}={size!r} must be a fraction in (0, 1) or a count >= 1")
    if size < 1:
        return max(1, math.floor(size * n + 0.5))
    if size != int(size):
        raise ConfigError(f"dataset.{key}={size!r} must be a fraction in (0, 1) or a whole count")
    return int(size)


def seeded_split(n: int, val_size: float | None, test_size: float | None, seed: int, what: str) -> SplitIndex:
    """A split of n items fixed by ``seed``: test first, then validation (each when its size is not
    None), the rest train.

    Each split keeps the items' original order (sorted indices), so the same images in the same order
    give the same splits whether they come from a folder or an array file.
    """
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    n_test = 0 if test_size is None else split_count(test_size, n, "test_size")
    n_val = 0 if val_size is None else split_count(val_size, n, "val_size")
    if n_test + n_val >= n:
        raise ConfigError(
            f"{what} has {n} images, too few for {n_val} validation and {n_test} test images; "
            "lower dataset.val_size / dataset.test_size (fractions such as 0.1 or counts)"
        )
    test, val, train = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
    return SplitIndex(np.sort(train), np.sort(val), np.sort(test))


def check_labels(labels: np.ndarray, n: int, what: str) -> tuple[np.ndarray, int]:
    """Class indices [N] or binary attribute vectors [N, A] as int64, and the number of classes (or A)."""
    if len(labels) != n:
        raise DataError(
            f"{what}: {len(labels)} labels for {n} images; "
            "give exactly one label (or attribute row) per image"
        )
    if labels.ndim not in (1, 2):
        raise DataError(
            f"{what}: labels must be class indices [N] or attribute rows [N, A], got {labels.shape}"
        )
    if labels.dtype.kind == "f" and not np.all(np.isfinite(labels) & (labels == np.round(labels))):
        raise DataError(f"{what}: labels must be whole numbers (class indices), got fractional values")
    if labels.dtype.kind not in "iufb":
        raise DataError(f"{what}: labels must be integers, got dtype {labels.dtype}")
    ints = labels.astype(np.int64)
    if n and ints.min() < 0:
        raise DataError(f"{what}: labels must be >= 0 (class indices from 0), found {int(ints.min())}")
    if ints.ndim == 2:
        if n and ints.max() > 1:
            raise DataError(f"{what}: attribute rows [N, A] must be 0/1, found {int(ints.max())}")
        return ints, ints.shape[1]
    return ints, int(ints.max()) + 1 if n else 0


def check_factors(factors: np.ndarray, n: int, what: str) -> np.ndarray:
    """Ground-truth factors of variation as float32 [N, K] (one row per image)."""
    if factors.ndim == 1:
        factors = factors[:, None]
    if factors.ndim != 2 or len(factors) != n:
        raise DataError(
            f"{what}: factors must be one row per image [N, K] for {n} images, got shape {factors.shape}"
        )
    if factors.dtype.kind not in "iufb" or not np.all(np.isfinite(factors)):
        raise DataError(f"{what}: factors must be finite numbers, got dtype {factors.dtype}")
    return factors.astype(np.float32)


def memory_size(nbytes: float) -> str:
    """Bytes in KB, MB or GB (binary units), one decimal."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes / 2**10:.1f} KB"


class TensorImages(Dataset):
    """Items (uint8 image [C, H, W], label or None) of images already held as one tensor."""

    def __init__(self, x: Tensor, y: Tensor | None) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor | None]:
        return self.x[i], None if self.y is None else self.y[i]


@dataclass
class ImageSource(ABC):
    """What a dataset on disk holds, known before its images are decoded (see the module docstring).

    Subclasses fill the fields and implement :meth:`load` and :meth:`datasets`. ``labels`` and
    ``factors`` are per split (None when the data has none); ``levels`` counts pixel values
    (256 for 8-bit images, 2 for 0/1 images).
    """

    name: str
    what: str  # where the data came from, for messages ("folder /data/pets")
    shape: tuple[int, int, int]
    levels: int
    counts: dict[str, int]
    value_note: str = "uint8 0-255"
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    factor_names: tuple[str, ...] | None = None
    labels: dict[str, Tensor | None] = field(default_factory=dict)
    factors: dict[str, Tensor | None] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Memory of all splits as uint8 tensors."""
        return sum(self.counts.values()) * math.prod(self.shape)

    def describe(self, in_memory: bool) -> str:
        """The one line logged at load: what was found and where it will live."""
        c, h, w = self.shape
        total = sum(self.counts.values())
        counts = " / ".join(str(self.counts[s]) for s in SPLITS)
        parts = [f"{self.name}: found {total} images in {self.what} ({counts} train / val / test)"]
        y = self.labels.get("train")
        if self.num_classes is None:
            parts.append("no labels")
        elif y is not None and y.dim() == 2:
            parts.append(f"{self.num_classes} attributes")
        else:
            names = self.class_names or ()
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            parts.append(f"{self.num_classes} classes" + (f" ({shown})" if names else ""))
        if self.factor_names is not None:
            parts.append(f"{len(self.factor_names)} factors ({', '.join(self.factor_names)})")
        parts.append(f"{h}x{w}x{c}")
        parts.append(self.value_note)
        where = "in memory" if in_memory else "if held in memory; streamed by DataLoader workers instead"
        parts.append(f"{memory_size(self.nbytes)} {where}")
        return ", ".join(parts)

    @abstractmethod
    def load(self) -> Splits:
        """Every split decoded into uint8 tensors [N, C, H, W]."""

    @abstractmethod
    def datasets(self) -> dict[str, Dataset]:
        """Per-image datasets of each split, decoded on access (by DataLoader workers)."""

    def splits_from(self, images: dict[str, Tensor]) -> Splits:
        """:class:`Splits` of the decoded images with this source's labels and factors."""
        return Splits(
            train_x=images["train"],
            train_y=self.labels.get("train"),
            test_x=images["test"],
            test_y=self.labels.get("test"),
            levels=self.levels,
            num_classes=self.num_classes,
            val_x=images["val"],
            val_y=self.labels.get("val"),
            factors={s: self.factors.get(s) for s in SPLITS} if self.factor_names else None,
            factor_names=self.factor_names,
            class_names=self.class_names,
        )


def choose_in_memory(in_memory: bool | str, nbytes: int, memory_limit_mb: float, name: str) -> bool:
    """``dataset.in_memory``: true, false, or auto (in memory when the uint8 images take <= the limit)."""
    if in_memory == "auto":
        return nbytes <= memory_limit_mb * 2**20
    if isinstance(in_memory, bool):
        return in_memory
    raise ConfigError(f"dataset.in_memory={in_memory!r} for {name} must be true, false or auto")


OPENERS: dict[str, Callable[..., ImageSource]] = {}


def opener(name: str) -> Callable[[Callable[..., ImageSource]], Callable[..., ImageSource]]:
    """Register ``fn(root, download, **options) -> ImageSource`` as the dataset ``name``."""

    def register(fn: Callable[..., ImageSource]) -> Callable[..., ImageSource]:
        OPENERS[name] = fn
        return fn

    return register


def open_source(name: str, options: dict[str, Any], split_seed: int = 0) -> ImageSource:
    """Call the opener of ``name`` with the dataset group's options, refusing keys it does not take.

    ``split_seed`` goes to openers that draw a split (those with a ``split_seed`` parameter).
    """
    fn = OPENERS[name]
    params = inspect.signature(fn).parameters
    if "split_seed" in params:
        options = {**options, "split_seed": split_seed}
    accepted = [p for p in params if p not in ("root", "download")]
    unknown = sorted(set(options) - set(accepted) - {"root", "download"})
    if unknown:
        raise ConfigError(
            f"dataset.{unknown[0]} is not an option of dataset={name}; its options are {', '.join(accepted)}"
        )
    return fn(**options)
