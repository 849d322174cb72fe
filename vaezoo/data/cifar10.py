"""CIFAR-10 from its official python batches (``cifar-10-batches-py/``), 32x32 colour, 10 classes.

The batches are read directly (torchvision is used only to download them), so a copy is not rejected
for a checksum and the same reader serves memory and streaming: 45k train / 5k validation (drawn
from the official training set by ``split_seed``) / 10k test.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from vaezoo.data.arrays import ArraysSource
from vaezoo.data.source import SPLITS, opener
from vaezoo.data.sources import SOURCES, Splits, _missing, _torchvision
from vaezoo.errors import ConfigError, DataError

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]
META = "batches.meta"


def _read_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")  # the official format is a pickled dict
    data = np.asarray(entry["data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(entry["labels"]) != len(data):
        raise DataError(
            f"{path} is not a CIFAR-10 batch (data {data.shape}); re-download cifar-10-python.tar.gz"
        )
    return data.reshape(-1, 3, 32, 32), list(entry["labels"])


def load_cifar10(root: Path, download: bool) -> Splits:
    """The official 50k training and 10k test images (no validation split: the caller draws it)."""
    folder = root / FOLDER
    files = [*TRAIN_BATCHES, *TEST_BATCHES, META]
    if not all((folder / f).is_file() for f in files):
        if not download:
            raise _missing("cifar10", folder, files, None)
        _torchvision("cifar10", "CIFAR10", root, download, ["cifar-10-python.tar.gz or cifar-10-batches-py/"])
    train = [_read_batch(folder / f) for f in TRAIN_BATCHES]
    test = _read_batch(folder / TEST_BATCHES[0])
    with open(folder / META, "rb") as f:
        names = tuple(pickle.load(f, encoding="latin1")["label_names"])
    return Splits(
        train_x=torch.from_numpy(np.concatenate([x for x, _ in train])),
        train_y=torch.tensor([y for _, ys in train for y in ys]),
        test_x=torch.from_numpy(test[0]),
        test_y=torch.tensor(test[1]),
        levels=256,
        num_classes=10,
        class_names=names,
    )


SOURCES["cifar10"] = load_cifar10


@opener("cifar10")
def open_cifar10(root: Path, download: bool, val_size: int = 5000, split_seed: int = 0) -> ArraysSource:
    """CIFAR-10 with its validation split drawn as InMemoryDataModule draws it (first ``val_size`` of a
    permutation seeded by ``split_seed``), so runs match those of ``InMemoryDataModule("cifar10")``."""
    raw = load_cifar10(root, download)
    n = len(raw.train_x)
    if not 0 < val_size < n:
        raise ConfigError(f"dataset.val_size={val_size} must be between 1 and {n - 1} for cifar10")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    val, train = perm[:val_size], perm[val_size:]
    images = {"train": raw.train_x[train], "val": raw.train_x[val], "test": raw.test_x}
    assert raw.train_y is not None
    labels = {"train": raw.train_y[train], "val": raw.train_y[val], "test": raw.test_y}
    return ArraysSource(
        name="cifar10",
        what=str(root / FOLDER),
        shape=(3, 32, 32),
        levels=256,
        counts={s: len(images[s]) for s in SPLITS},
        num_classes=10,
        class_names=raw.class_names,
        labels=labels,
        images=images,
    )
