"""In-memory data: each split is one uint8 tensor on the training device, batched by index.

No per-sample decoding happens in the training loop: a batch is one gather from a tensor, then a
conversion to float in [0, 1] (and, for dynamic binarization, one Bernoulli draw).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from vaezoo.data.factors import TableGroundTruth
from vaezoo.data.info import DataInfo
from vaezoo.data.source import ImageSource
from vaezoo.data.sources import SOURCES, Splits
from vaezoo.errors import ConfigError

log = logging.getLogger(__name__)

BINARIZE_MODES = ("none", "dynamic", "threshold")


class IndexBatches(Sampler[Tensor]):
    """Yields index tensors of one batch each, sharded across processes and resumable mid-epoch.

    The shuffled order is a function of (``seed``, epoch) alone, so it is the same on every process and
    after a resume. With ``world_size`` > 1 each process takes every ``world_size``-th example:
    ``even=True`` (training) first drops the ``n % world_size`` remainder of the permutation so every
    process runs the same number of steps, as DDP requires; ``even=False`` (evaluation) pads and drops
    nothing, so every example is evaluated exactly once (shards differ by at most one example).
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        even: bool = True,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size, self.even = seed, rank, world_size, even
        self.epoch = 0
        self.served = 0  # batches yielded so far in the current pass (what a checkpoint records)
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before every training epoch."""
        self.epoch = epoch

    def resume(self, epoch: int, served: int) -> None:
        """Make the next pass over ``epoch`` skip the ``served`` batches an interrupted run trained on."""
        self._resume = (epoch, served)

    def _shard(self) -> Tensor:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=generator)
        else:
            order = torch.arange(self.n)
        if self.world_size > 1:
            if self.even:
                order = order[: self.n - self.n % self.world_size]
            order = order[self.rank :: self.world_size]
        return order

    def __iter__(self) -> Iterator[Tensor]:
        order = self._shard()
        size = len(order)
        stop = size - size % self.batch_size if self.drop_last else size
        skip = 0
        if self._resume is not None and self._resume[0] == self.epoch:
            skip = self._resume[1]
        self._resume = None
        self.served = skip
        for start in range(skip * self.batch_size, stop, self.batch_size):
            self.served += 1
            yield order[start : start + self.batch_size]

    def __len__(self) -> int:
        size = len(self._shard()) if self.world_size > 1 else self.n
        full, rest = divmod(size, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1


class ResumableLoader(DataLoader):
    """A DataLoader over :class:`IndexBatches` whose position is saved in checkpoints.

    Lightning stores ``state_dict()`` of the training loader in every checkpoint and hands it back on
    resume, so a run killed mid-epoch continues with the next unseen batch instead of restarting the epoch.
    """

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "served": self.sampler.served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.resume(int(state["epoch"]), int(state["served"]))


def check_batching(binarize: str, batch_size: int, eval_batch_size: int) -> None:
    """The argument checks every data module shares (in memory or streamed)."""
    if binarize not in BINARIZE_MODES:
        raise ConfigError(f"dataset.binarize={binarize!r} is not one of {', '.join(BINARIZE_MODES)}")
    if batch_size < 1 or eval_batch_size < 1:
        raise ConfigError("dataset.batch_size and dataset.eval_batch_size must be >= 1")


def bernoulli_sample(p: Tensor) -> Tensor:
    """A Bernoulli(p) draw as float 0/1: uniform < p, about twice as fast as torch.bernoulli on CPUs."""
    return torch.rand_like(p).lt_(p)


class TensorSplit(Dataset):
    """One split held as tensors; indexing with a tensor of indices returns a whole batch dict."""

    def __init__(
        self,
        x: Tensor,
        y: Tensor | None,
        levels: int,
        dynamic_binarize: bool,
        factors: Tensor | None = None,
    ) -> None:
        self.x, self.y, self.levels, self.dynamic_binarize = x, y, levels, dynamic_binarize
        self.factors = factors  # ground-truth factors [N, K] (kept on the CPU) when the data has them

    def __len__(self) -> int:
        return len(self.x)

    def to(self, device: torch.device) -> TensorSplit:
        y = None if self.y is None else self.y.to(device)
        return TensorSplit(self.x.to(device), y, self.levels, self.dynamic_binarize, self.factors)

    def __getitem__(self, index: Tensor) -> dict[str, Tensor]:
        index = index.to(self.x.device)
        x = self.x[index].float().div_(self.levels - 1)
        if self.dynamic_binarize:
            x = bernoulli_sample(x)
        batch = {"x": x}
        if self.y is not None:
            batch["y"] = self.y[index]
        return batch


def binarize_once(x: Tensor, levels: int, mode: str, seed: int) -> Tensor:
    """Binarize a uint8 split once: a seeded Bernoulli draw ("dynamic") or x > 0.5 ("threshold")."""
    p = x.float() / (levels - 1)
    if mode == "threshold":
        return (p > 0.5).to(torch.uint8)
    return torch.bernoulli(p, generator=torch.Generator().manual_seed(seed)).to(torch.uint8)


class InMemoryDataModule(L.LightningDataModule):
    """Loads a dataset once, fixes its train / validation / test split, and serves index batches.

    binarize:
      none      grey levels scaled to [0, 1]
      dynamic   a fresh Bernoulli sample of each training image every time it is drawn; validation
                and test are binarized once with a fixed seed so evaluation is repeatable
      threshold pixel > 0.5, fixed for all splits
    The validation split is ``val_size`` images taken from the training set by a permutation fixed
    by ``split_seed`` (datasets with an official validation split use it instead). ``source`` (an
    opened :class:`~vaezoo.data.source.ImageSource`: image folders, array files, CIFAR-10, CelebA)
    replaces the loader named ``name`` and brings its own validation split.
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
        on_device: bool = True,
        source: ImageSource | None = None,
        known_name: bool = False,
    ) -> None:
        super().__init__()
        if source is None and name not in SOURCES and not known_name:  # known_name: a subclass loads it
            raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(sorted(SOURCES))}")
        check_batching(binarize, batch_size, eval_batch_size)
        self.name, self.root, self.binarize = name, Path(root).expanduser(), binarize
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.split_seed = val_size, split_seed
        self.download, self.on_device, self.source = download, on_device, source
        self.splits: dict[str, TensorSplit] = {}
        self._info: DataInfo | None = None
        self.rank, self.world_size = 0, 1
        self._train_sampler: IndexBatches | None = None
        self._pending_resume: tuple[int, int] | None = None

    # Trainer(use_distributed_sampler=False) must go with this datamodule: it shards batches itself
    # (exactly once per example in evaluation, see IndexBatches), which Lightning's wrapper would not.
    shards_itself = True

    @property
    def info(self) -> DataInfo:
        if self._info is None:
            self.load()
        assert self._info is not None
        return self._info

    def load(self) -> None:
        """Read the dataset into memory (once) and fix the splits."""
        if self.splits:
            return
        raw: Splits = self.source.load() if self.source else SOURCES[self.name](self.root, self.download)
        train_x, train_y, val_x, val_y = raw.train_x, raw.train_y, raw.val_x, raw.val_y
        factors = dict(raw.factors or {})
        if val_x is None:
            if not 0 < self.val_size < len(train_x):
                raise ConfigError(
                    f"dataset.val_size={self.val_size} must be between 1 and {len(train_x) - 1} "
                    f"for {self.name}"
                )
            perm = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(self.split_seed))
            val_idx, train_idx = perm[: self.val_size], perm[self.val_size :]
            val_x, train_x = train_x[val_idx], train_x[train_idx]
            if train_y is not None:
                val_y, train_y = train_y[val_idx], train_y[train_idx]
            if factors.get("train") is not None:
                factors["val"], factors["train"] = factors["train"][val_idx], factors["train"][train_idx]
        levels = raw.levels
        dynamic = False
        if self.binarize != "none" and levels > 2:
            if self.binarize == "threshold":
                train_x = binarize_once(train_x, levels, "threshold", 0)
            else:
                dynamic = True
            val_x = binarize_once(val_x, levels, self.binarize, self.split_seed + 1)
            test_x = binarize_once(raw.test_x, levels, self.binarize, self.split_seed + 2)
        else:
            test_x = raw.test_x
        train_levels = levels if dynamic else (2 if self.binarize != "none" else levels)
        eval_levels = 2 if self.binarize != "none" else levels
        self.splits = {
            "train": TensorSplit(train_x, train_y, train_levels, dynamic, factors.get("train")),
            "val": TensorSplit(val_x, val_y, eval_levels, False, factors.get("val")),
            "test": TensorSplit(test_x, raw.test_y, eval_levels, False, factors.get("test")),
        }
        self._info = DataInfo(
            name=self.name,
            shape=tuple(train_x.shape[1:]),  # type: ignore[arg-type]
            levels=eval_levels,
            num_classes=raw.num_classes,
            class_names=raw.class_names,
            factor_names=raw.factor_names,
            train_size=len(train_x),
        )
        log.info(
            "dataset %s: %d train / %d val / %d test images of shape %s, %d levels",
            self.name,
            len(train_x),
            len(val_x),
            len(test_x),
            self._info.shape,
            eval_levels,
        )

    def ground_truth(self) -> TableGroundTruth | None:
        """The test split's factors as ground truth for the disentanglement metrics; None without factors."""
        self.load()
        test = self.splits["test"]
        if self.info.factor_names is None or test.factors is None:
            return None
        return TableGroundTruth(
            self.info.factor_names, test.factors.cpu().numpy(), lambda i: test[torch.from_numpy(i)]["x"]
        )

    def setup(self, stage: str | None = None) -> None:
        self.load()
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            self.rank, self.world_size = trainer.global_rank, trainer.world_size
        if self.on_device and trainer is not None:
            device = trainer.strategy.root_device
            self.splits = {k: v.to(device) for k, v in self.splits.items()}

    def loader(
        self, split: str, shuffle: bool = False, batch_size: int | None = None, shard: bool = False
    ) -> DataLoader:
        """Batches of one split; ``shard=True`` gives this process its share (see :class:`IndexBatches`).

        ``dataset.batch_size`` is per process: under DDP one optimiser step sees world_size times as many
        examples. Shuffling follows Lightning's seed (``PL_GLOBAL_SEED``, set by ``seed_everything``).
        """
        data = self.splits[split]
        size = batch_size or (self.batch_size if split == "train" else self.eval_batch_size)
        sampler = IndexBatches(
            len(data),
            size,
            shuffle,
            seed=int(os.environ.get("PL_GLOBAL_SEED", 0)),
            rank=self.rank if shard else 0,
            world_size=self.world_size if shard else 1,
            even=split == "train",
        )
        if split == "train" and shard:
            if self._pending_resume is not None:
                sampler.resume(*self._pending_resume)
                self._pending_resume = None
            self._train_sampler = sampler
        # Its own generator: DataLoader draws a base seed each time it is iterated, which would otherwise
        # shift the global random stream (and break exact resumes, whose first iter() comes at a new point).
        return ResumableLoader(data, sampler=sampler, batch_size=None, generator=torch.Generator())

    def state_dict(self) -> dict[str, int]:
        """The training loader's position, saved in checkpoints by Lightning (see :class:`ResumableLoader`).

        Kept here as well because Lightning restores the datamodule before anything (such as
        ``estimated_stepping_batches``) builds the training loader, which it does not for loader states.
        """
        s = self._train_sampler
        return {} if s is None else {"epoch": s.epoch, "served": s.served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state:
            self._pending_resume = (int(state["epoch"]), int(state["served"]))

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True, shard=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val", shard=True)

    def test_dataloader(self) -> DataLoader:
        return self.loader("test", shard=True)
