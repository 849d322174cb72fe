"""Benchmark inputs: MNIST, and a 32×32 colour input (CIFAR-10 when present, else a synthetic stand-in).

The synthetic input is handed to vaezoo's builder as the data module's ``source`` (nothing is added to
the product's dataset registry), so ``InMemoryDataModule`` serves it exactly as it serves CIFAR-10; it
is labelled synthetic in every output. Its values are random, so only its speed figures mean anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from benchmarks.references import PILImages
from vaezoo.data.sources import Splits

SYNTHETIC = "synthetic_colour32"
SYNTHETIC_NOTE = (
    "synthetic 32x32x3 uint8 (random pixels, 10 random labels): CIFAR-10 not found at the data root"
)


def load_synthetic_colour32(
    root: Path, download: bool, n_train: int = 50_000, n_test: int = 10_000
) -> Splits:
    """CIFAR-10-shaped random data: 50k train (45k after the validation split) and 10k test images."""
    g = torch.Generator().manual_seed(1234)
    x = torch.randint(0, 256, (n_train + n_test, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n_train + n_test,), generator=g)
    return Splits(x[:n_train], y[:n_train], x[n_train:], y[n_train:], levels=256, num_classes=10)


class SyntheticColour32:
    """The data module's source for the synthetic input (its ``load`` is all a source needs)."""

    def load(self) -> Splits:
        return load_synthetic_colour32(Path("."), download=False)


def cifar10_present(root: Path) -> bool:
    return (root / "cifar-10-batches-py" / "data_batch_1").is_file()


def train_indices(n: int, val_size: int, split_seed: int) -> torch.Tensor:
    """The training indices vaezoo's InMemoryDataModule keeps after drawing its validation split."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
    return perm[val_size:]


def tutorial_dataset(
    dataset: str,
    root: Path,
    val_size: int,
    split_seed: int,
    train_x: torch.Tensor,
    train_y: torch.Tensor | None,
) -> Dataset:
    """What a tutorial reads (a PIL image per example through ``ToTensor``), on vaezoo's training split."""
    import torchvision
    from torchvision.transforms import ToTensor

    if dataset == "mnist":
        full = torchvision.datasets.MNIST(str(root), train=True, download=True, transform=ToTensor())
        return Subset(full, train_indices(len(full), val_size, split_seed).tolist())
    if dataset == "cifar10":
        full = torchvision.datasets.CIFAR10(str(root), train=True, download=True, transform=ToTensor())
        return Subset(full, train_indices(len(full), val_size, split_seed).tolist())
    # The synthetic input: the same images vaezoo trains on, served per example like CIFAR10 does.
    images = train_x.cpu().permute(0, 2, 3, 1).contiguous().numpy()
    targets = np.zeros(len(images), np.int64) if train_y is None else train_y.cpu().numpy()
    return PILImages(images, targets, ToTensor())
