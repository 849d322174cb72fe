"""CIFAR-10 from its official python batches (``cifar-10-batches-py/``), 32x32 colour, 10 classes.

The batches are read directly (torchvision is used only to download them), so a copy is not rejected
for a checksum and the same reader serves memory and streaming: 45k train / 5k validation (drawn
from the official training set by ``split_seed``) / 10k test. The batches are pickles, read through
vaezoo.data.safe_load's unpickler, which admits only dicts, lists, strings, numbers and NumPy
arrays: a batch file naming anything else is refused before it can run code.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaezoo.data.arrays import ArraysSource
from vaezoo.data.safe_load import CARRIES_CODE, CarriesObjects, load_plain_pickle
from vaezoo.data.source import SPLITS, opener
from vaezoo.data.sources import SOURCES, Splits, _missing, _torchvision
from vaezoo.errors import ConfigError, DataError, UnsafeInputError

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]
META = "batches.meta"


REDOWNLOAD = f"delete the {FOLDER} folder and download it again (dataset.download=true)"


def _read_pickled(path: Path) -> dict[str, Any]:
    """One official batch file as its dict, through the unpickler that admits only plain data and arrays."""
    try:
        with open(path, "rb") as f:
            entry = load_plain_pickle(f)
    except CarriesObjects as refused:
        raise UnsafeInputError(
            f"refusing {path}: {CARRIES_CODE} (it calls {refused.culprit}, which no official CIFAR-10 "
            f"batch holds); {REDOWNLOAD}"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        reason = " ".join(str(err).split())[:100] or type(err).__name__
        raise DataError(f"{path} is not a CIFAR-10 batch ({reason}); {REDOWNLOAD}") from None
    if not isinstance(entry, dict):
        raise DataError(
            f"{path} is not a CIFAR-10 batch (a {type(entry).__name__}, not a dict); {REDOWNLOAD}"
        )
    return entry


def _read_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    entry = _read_pickled(path)
    data, labels = entry.get("data"), entry.get("labels")
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
        or not isinstance(labels, list)
        or len(labels) != len(data)
        or not all(isinstance(y, int) and 0 <= y < 10 for y in labels)
    ):
        shape = data.shape if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path} is not a CIFAR-10 batch (data {shape}); {REDOWNLOAD}")
    return data.reshape(-1, 3, 32, 32), labels


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
    names = _read_pickled(folder / META).get("label_names")
    if not (isinstance(names, list) and len(names) == 10 and all(isinstance(n, str) for n in names)):
        raise DataError(f"{folder / META} holds no 10 label_names; {REDOWNLOAD}")
    return Splits(
        train_x=torch.from_numpy(np.concatenate([x for x, _ in train])),
        train_y=torch.tensor([y for _, ys in train for y in ys]),
        test_x=torch.from_numpy(test[0]),
        test_y=torch.tensor(test[1]),
        levels=256,
        num_classes=10,
        class_names=tuple(names),
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
