"""Streaming data for datasets that should not be held in memory (CelebA, large image folders): worker
processes decode, pinned host memory feeds the GPU.

Workers return uint8 images (4× less to copy than floats); the conversion to [0, 1] and dynamic
binarization happen on the device after the transfer. Splits, validation draw and binarization
follow :class:`~vaezoo.data.datamodule.InMemoryDataModule`: the same seeded validation split, a
fresh Bernoulli draw per training image, and validation / test binarized once (per image, seeded)
so evaluation is repeatable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from vaezoo.data.datamodule import bernoulli_sample, check_batching
from vaezoo.data.info import DataInfo
from vaezoo.data.source import ImageSource
from vaezoo.data.sources import _MNIST_FILES, _torchvision
from vaezoo.errors import ConfigError

log = logging.getLogger(__name__)

# name -> (torchvision class, files named in errors, levels, classes). Datasets opened as an
# ImageSource (image_folder, arrays, cifar10, celeba) are streamed from the source's own datasets.
STREAMABLE: dict[str, tuple[str, list[str], int, int]] = {
    "mnist": ("MNIST", _MNIST_FILES, 256, 10),
    "fashion_mnist": ("FashionMNIST", _MNIST_FILES, 256, 10),
}


class ImageSplit(Dataset):
    """One split of a torchvision dataset: uint8 image [C, H, W] and label per index.

    ``fixed`` binarizes each image once ("threshold", or "dynamic" with a seed per image) so
    validation and test images are the same on every pass. Indexing with a tensor of indices returns
    a float batch dict, as :class:`~vaezoo.data.datamodule.TensorSplit` does (used for image grids).
    """

    def __init__(
        self,
        base: Dataset,
        indices: list[int] | None,
        levels: int,
        fixed: str = "none",
        seed: int = 0,
        dynamic_binarize: bool = False,
    ) -> None:
        self.base, self.indices, self.fixed, self.seed = base, indices, fixed, seed
        self.factors: Tensor | None = None  # ground-truth factors [N, K] when the data has them
        self.source_levels = levels
        self.levels = 2 if fixed != "none" else levels  # values after this split's preprocessing
        self.dynamic_binarize = dynamic_binarize

    def __len__(self) -> int:
        return len(self.indices) if self.indices is not None else len(self.base)  # type: ignore[arg-type]

    def item(self, i: int) -> tuple[Tensor, Tensor | None]:
        x, y = self.base[self.indices[i] if self.indices is not None else i]
        if self.fixed == "threshold":
            x = (x.int() * 2 > self.source_levels - 1).to(torch.uint8)
        elif self.fixed == "dynamic":
            g = torch.Generator().manual_seed(self.seed * 10_000_019 + i)
            x = torch.bernoulli(x.float() / (self.source_levels - 1), generator=g).to(torch.uint8)
        if y is None:
            return x, None
        y = y if isinstance(y, Tensor) else torch.tensor(y)
        return x, y.long()

    def __getitem__(self, index: int | Tensor) -> Any:
        if isinstance(index, Tensor):
            batch = collate([self.item(int(i)) for i in index.tolist()])
            return to_model_input(batch, self.levels, self.dynamic_binarize)
        return self.item(index)


def collate(items: list[tuple[Tensor, Tensor | None]]) -> dict[str, Tensor]:
    """One batch dict; unlabelled items (label None) give a batch without "y"."""
    xs, ys = zip(*items, strict=True)
    if ys[0] is None:
        return {"x": torch.stack(xs)}
    return {"x": torch.stack(xs), "y": torch.stack(ys)}


def to_model_input(batch: dict[str, Tensor], levels: int, dynamic_binarize: bool) -> dict[str, Tensor]:
    """uint8 -> float in [0, 1] (and a Bernoulli draw for dynamic binarization), wherever the batch is."""
    x = batch["x"].float().div_(levels - 1)
    if dynamic_binarize:
        x = bernoulli_sample(x)
    return {**batch, "x": x}


class DeviceBatches:
    """Re-iterable batches ready for the model: on ``device``, as floats (what evaluation code expects)."""

    def __init__(self, loader: DataLoader, split: ImageSplit, device: torch.device) -> None:
        self.loader, self.split, self.device = loader, split, device

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        for batch in self.loader:
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            yield to_model_input(batch, self.split.levels, self.split.dynamic_binarize)


class StreamingDataModule(L.LightningDataModule):
    """Reads images through torchvision datasets in ``num_workers`` processes, one batch at a time.

    Same arguments as InMemoryDataModule, plus the DataLoader's: ``num_workers``, ``pin_memory``
    (used when a CUDA device is present), ``persistent_workers``, ``prefetch_factor``. ``source`` (an
    opened :class:`~vaezoo.data.source.ImageSource`) replaces the torchvision dataset named ``name``.
    """

    def __init__(
        self,
        name: str,
        root: str | os.PathLike = "data",
        binarize: str = "none",
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        val_size: int = 10_000,
        split_seed: int = 0,
        download: bool = True,
        num_workers: int = 4,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        prefetch_factor: int = 4,
        source: ImageSource | None = None,
    ) -> None:
        super().__init__()
        if source is None and name not in STREAMABLE:
            raise ConfigError(
                f"dataset.in_memory=false streams image datasets ({', '.join(STREAMABLE)}, image_folder, "
                "arrays, cifar10, celeba); "
                f"{name} is small, keep dataset.in_memory=true"
            )
        check_batching(binarize, batch_size, eval_batch_size)
        if num_workers < 0:
            raise ConfigError(f"dataset.num_workers must be >= 0, got {num_workers}")
        self.name, self.root, self.binarize = name, Path(root).expanduser(), binarize
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.split_seed, self.download = val_size, split_seed, download
        self.num_workers, self.pin_memory = num_workers, pin_memory and torch.cuda.is_available()
        self.persistent_workers = persistent_workers and num_workers > 0
        self.prefetch_factor = prefetch_factor if num_workers > 0 else None
        self.source = source
        self.splits: dict[str, ImageSplit] = {}
        self.device = torch.device("cpu")
        self._info: DataInfo | None = None
        self._loaders: dict[tuple[str, bool, int], DataLoader] = {}

    @property
    def info(self) -> DataInfo:
        if self._info is None:
            self.load()
        assert self._info is not None
        return self._info

    def _dataset(self, **kwargs: Any) -> Dataset:
        from torchvision.transforms import PILToTensor

        cls_name, files, *_ = STREAMABLE[self.name]
        tf = PILToTensor()
        return _torchvision(self.name, cls_name, self.root, self.download, files, transform=tf, **kwargs)

    def load(self) -> None:
        """Open the dataset files and fix the splits (no images are decoded here)."""
        if self.splits:
            return
        class_names = factor_names = None
        if self.source is not None:
            src = self.source
            bases = src.datasets()
            train, val, test = bases["train"], bases["val"], bases["test"]
            train_idx = val_idx = None
            levels, classes = src.levels, src.num_classes
            class_names, factor_names = src.class_names, src.factor_names
        else:
            _, _, levels, classes = STREAMABLE[self.name]
            train = self._dataset(train=True)
            test = self._dataset(train=False)
            n = len(train)  # type: ignore[arg-type]
            if not 0 < self.val_size < n:
                raise ConfigError(
                    f"dataset.val_size={self.val_size} must be between 1 and {n - 1} for {self.name}"
                )
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
            val_idx, train_idx = perm[: self.val_size].tolist(), perm[self.val_size :].tolist()
            val = train
        binarize = self.binarize
        dynamic = binarize == "dynamic"
        self.splits = {
            "train": ImageSplit(
                train, train_idx, levels, "threshold" if binarize == "threshold" else "none", 0, dynamic
            ),
            "val": ImageSplit(val, val_idx, levels, binarize, self.split_seed + 1),
            "test": ImageSplit(test, None, levels, binarize, self.split_seed + 2),
        }
        shape = tuple(self.splits["train"].item(0)[0].shape)
        eval_levels = 2 if binarize != "none" else levels
        if self.source is not None:
            for split, part in self.splits.items():
                part.factors = self.source.factors.get(split)
        self._info = DataInfo(
            name=self.name,
            shape=shape,  # type: ignore[arg-type]
            levels=eval_levels,
            num_classes=classes,
            class_names=class_names,
            factor_names=factor_names,
            train_size=len(self.splits["train"]),
        )
        log.info(
            "dataset %s (streamed by %d workers): %d train / %d val / %d test images of shape %s",
            self.name,
            self.num_workers,
            *(len(s) for s in self.splits.values()),
            shape,
        )

    def setup(self, stage: str | None = None) -> None:
        self.load()
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            self.device = trainer.strategy.root_device

    def dataloader(self, split: str, shuffle: bool = False, batch_size: int | None = None) -> DataLoader:
        """The worker-backed DataLoader of uint8 batches; kept, so persistent workers are reused."""
        size = batch_size or (self.batch_size if split == "train" else self.eval_batch_size)
        key = (split, shuffle, size)
        if key not in self._loaders:
            self._loaders[key] = DataLoader(
                self.splits[split],
                batch_size=size,
                shuffle=shuffle,
                num_workers=self.num_workers,
                pin_memory=self.pin_memory,
                persistent_workers=self.persistent_workers,
                prefetch_factor=self.prefetch_factor,
                collate_fn=collate,
            )
        return self._loaders[key]

    def loader(self, split: str, shuffle: bool = False, batch_size: int | None = None) -> DeviceBatches:
        """Batches ready for the model (on the training device, float), for evaluation code."""
        return DeviceBatches(self.dataloader(split, shuffle, batch_size), self.splits[split], self.device)

    def on_after_batch_transfer(self, batch: dict[str, Tensor], dataloader_idx: int) -> dict[str, Tensor]:
        trainer = self.trainer
        split = (
            "train"
            if trainer.training
            else ("val" if trainer.validating or trainer.sanity_checking else "test")
        )
        s = self.splits[split]
        return to_model_input(batch, s.levels, s.dynamic_binarize)

    def train_dataloader(self) -> DataLoader:
        return self.dataloader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.dataloader("test")
