"""Datasets whose images cover a full grid of discrete factors (the ground-truth datasets of
disentanglement research: dSprites' variants, Shapes3D, SmallNORB, Cars3D, MPI3D).

Each dataset file registers a loader with :func:`grid` that returns a :class:`FactorGrid`: the stored
images (any uint8 layout), how to decode a batch of them, and which grid cell each stored image shows.
:class:`GridDataModule` (``_target_`` of their YAMLs) turns a grid into seeded train / validation / test
splits of cells, with each split's factor values, and exposes the whole grid to the disentanglement
metrics as a :class:`~vaezoo.data.factors.GroundTruthData`, as dSprites does.

A grid cell is the row-major index of its factor classes (the last factor varies fastest), as in the
official files of dSprites, Shapes3D and MPI3D. Factors listed as ``nuisance`` (SmallNORB's instance)
are part of the grid but not of the ground truth: the metrics' sampler draws them at random.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vaezoo.data.datamodule import InMemoryDataModule, TensorSplit
from vaezoo.data.factors import GroundTruthData
from vaezoo.data.info import DataInfo
from vaezoo.data.source import memory_size
from vaezoo.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: (rows of ``storage`` [B, ...] on any device, their cells [B] int64 on that device) -> float [B, C, H, W].
Decode = Callable[[Tensor, Tensor], Tensor]


class Storage:
    """The stored rows, with one copy per device they are used on (moved once, shared by all splits)."""

    def __init__(self, rows: Tensor) -> None:
        self._copies = {rows.device: rows}
        self.cpu = rows

    def on(self, device: torch.device) -> Tensor:
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        if device not in self._copies:
            self._copies[device] = self.cpu.to(device)
        return self._copies[device]


@dataclass
class FactorGrid:
    """A dataset over every combination of discrete factors, one stored image per grid cell.

    ``row_of_cell[c]`` is the storage row showing cell ``c`` (None: row c shows cell c).
    ``nuisance`` names grid factors that are not ground truth (drawn at random by the metrics' sampler).
    """

    names: tuple[str, ...]
    values: list[np.ndarray]
    storage: Tensor
    decode: Decode
    shape: tuple[int, int, int]
    source: str
    row_of_cell: np.ndarray | None = None
    nuisance: tuple[str, ...] = ()
    levels: int = 256

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values)

    @property
    def num_cells(self) -> int:
        return int(np.prod(self.sizes))

    @property
    def exposed(self) -> list[int]:
        """Positions of the ground-truth factors among the grid's factors."""
        return [k for k, n in enumerate(self.names) if n not in self.nuisance]


GRIDS: dict[str, Callable[..., FactorGrid]] = {}


def grid(name: str) -> Callable[[Callable[..., FactorGrid]], Callable[..., FactorGrid]]:
    """Register ``fn(root, **options) -> FactorGrid`` as the dataset ``name`` (``dataset.name``)."""

    def register(fn: Callable[..., FactorGrid]) -> Callable[..., FactorGrid]:
        GRIDS[name] = fn
        return fn

    return register


def cells_of_classes(classes: np.ndarray, sizes: Sequence[int], what: str) -> np.ndarray:
    """The grid cell of each row of factor classes [N, F], checked to cover the grid exactly once.

    Returns ``row_of_cell`` (None when row i already shows cell i, as in the official files).
    """
    cells = np.ravel_multi_index(tuple(classes.T), tuple(sizes))
    total = int(np.prod(sizes))
    if len(cells) != total or len(np.unique(cells)) != total:
        shown = "x".join(map(str, sizes))
        raise DataError(
            f"{what}: {len(cells)} images with {len(np.unique(cells))} distinct factor combinations, but "
            f"a full {shown} grid needs every one of the {total} exactly once; the file is incomplete or "
            "not the official one: download it again"
        )
    if np.array_equal(cells, np.arange(total)):
        return None  # type: ignore[return-value]
    row_of_cell = np.empty(total, dtype=np.int64)
    row_of_cell[cells] = np.arange(total)
    return row_of_cell


def classes_from_values(table: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Factor values [N, F] -> classes [N, F] (index into each column's sorted distinct values), grids."""
    values = [np.unique(table[:, k]) for k in range(table.shape[1])]
    classes = np.stack([np.searchsorted(v, table[:, k]) for k, v in enumerate(values)], axis=1)
    return classes, values


def warn_if_not_official(name: str, found: Sequence[int], official: Sequence[int], where: str) -> None:
    """A log line when a file's grid is smaller than the published one (a subset or a stand-in)."""
    if tuple(found) != tuple(official):
        log.warning(
            "%s: %s has a %s factor grid, not the published %s; using it as it is",
            name,
            where,
            "x".join(map(str, found)),
            "x".join(map(str, official)),
        )


# --- seeded per-image randomness ----------------------------------------------------------------------
_MASK = 0xFFFFFFFF


def _mul32(x: Tensor, c: int) -> Tensor:
    """x * c mod 2**32 for x in [0, 2**32) held in int64, without int64 overflow (two 48-bit products)."""
    low = x * (c & 0xFFFF)
    high = (x * (c >> 16)).bitwise_and_(0xFFFF).bitwise_left_shift_(16)
    return (low + high).bitwise_and_(_MASK)


def _mix32(x: Tensor) -> Tensor:
    """A 32-bit integer hash (MurmurHash3's finaliser) of int64 tensors holding 32-bit values."""
    x = x.bitwise_xor(x.bitwise_right_shift(16))
    x = _mul32(x, 0x85EBCA6B)
    x = x.bitwise_xor(x.bitwise_right_shift(13))
    x = _mul32(x, 0xC2B2AE35)
    return x.bitwise_xor(x.bitwise_right_shift(16))


def seeded_uniform(seed: int, cells: Tensor, count: int) -> Tensor:
    """``count`` uniform numbers in [0, 1) per cell: float32 [B, count], a pure function of (seed, cell).

    A counter-based hash, so the same image gets the same colour or noise on every access, in any
    batch, on any device; what disentanglement_lib draws from its random state at each access is
    drawn here once per image and seed.
    """
    counter = cells.to(torch.int64).unsqueeze(1) * count + torch.arange(count, device=cells.device)
    key = int(_mix32(torch.tensor([seed & _MASK], dtype=torch.int64))) ^ ((seed >> 32) & _MASK)
    h = _mix32(counter.bitwise_and(_MASK).bitwise_xor_(key))
    h = _mix32(h.bitwise_xor_(_mix32(counter.bitwise_right_shift(32))))
    return h.bitwise_right_shift_(8).float().mul_(1.0 / (1 << 24))


# --- splits and ground truth ----------------------------------------------------------------------------
class GridSplit(TensorSplit):
    """A split held as grid cells (int64 [N]); a batch is decoded from the shared storage on access."""

    def __init__(self, cells: Tensor, factors: Tensor, data: FactorGrid, store: Storage) -> None:
        super().__init__(cells, None, data.levels, False, factors)
        self.data, self.store = data, store
        rows = (
            torch.arange(data.num_cells) if data.row_of_cell is None else torch.from_numpy(data.row_of_cell)
        )
        self.rows = rows[cells.cpu()].to(cells.device)

    def to(self, device: torch.device) -> GridSplit:
        return GridSplit(self.x.to(device), self.factors, self.data, self.store)

    def __getitem__(self, index: Tensor) -> dict[str, Tensor]:
        index = index.to(self.x.device)
        storage = self.store.on(self.x.device)
        return {"x": self.data.decode(storage[self.rows[index]], self.x[index])}


class GridGroundTruth(GroundTruthData):
    """The grid's ground-truth factors; nuisance factors are drawn from the sampler's ``rng``."""

    def __init__(self, data: FactorGrid, store: Storage) -> None:
        self.grid, self.store = data, store
        names = tuple(data.names[k] for k in data.exposed)
        super().__init__(names, [data.values[k] for k in data.exposed], self._no_rng)

    def _no_rng(self, classes: np.ndarray) -> Tensor:
        return self.sample_observations_from_factors(classes, np.random.default_rng(0))

    def sample_observations_from_factors(self, classes: np.ndarray, rng: np.random.Generator) -> Tensor:
        data = self.grid
        classes = np.asarray(classes, dtype=np.int64)
        full = np.zeros((len(classes), len(data.names)), dtype=np.int64)
        full[:, data.exposed] = classes
        for k, name in enumerate(data.names):
            if name in data.nuisance:
                full[:, k] = rng.integers(0, data.sizes[k], len(classes))
        cells = np.ravel_multi_index(tuple(full.T), data.sizes)
        rows = cells if data.row_of_cell is None else data.row_of_cell[cells]
        return data.decode(self.store.cpu[torch.from_numpy(rows)], torch.from_numpy(cells))


class GridDataModule(InMemoryDataModule):
    """A registered factor grid (``dataset.name``) in memory, split by cells like dSprites.

    Validation and test are ``val_size`` and ``test_size`` cells drawn by a permutation seeded by
    ``split_seed``; the rest trains. Each split carries its ground-truth factor values
    (``splits[s].factors``, float [N, F]); :meth:`ground_truth` serves the whole grid to the metrics.
    The remaining keys of the dataset group (``**options``) go to the dataset's loader.
    """

    def __init__(
        self,
        name: str,
        root: str = "data",
        batch_size: int = 64,
        eval_batch_size: int = 500,
        val_size: int = 5000,
        test_size: int = 5000,
        split_seed: int = 0,
        on_device: bool = True,
        **options: Any,
    ) -> None:
        if name not in GRIDS:
            raise ConfigError(
                f"dataset.name={name} is not a factor-grid dataset ({', '.join(sorted(GRIDS))})"
            )
        params = inspect.signature(GRIDS[name]).parameters
        accepted = [p for p in params if p != "root"]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ConfigError(
                f"dataset.{unknown[0]} is not an option of dataset={name}; its options are "
                f"{', '.join(accepted) or 'none'}"
            )
        super().__init__(
            name,
            root,
            "none",
            batch_size,
            eval_batch_size,
            val_size,
            split_seed,
            download=False,
            on_device=on_device,
            source=None,
            known_name=True,
        )
        if val_size < 1 or test_size < 1:
            raise ConfigError(f"dataset.val_size={val_size} and dataset.test_size={test_size} must be >= 1")
        self.test_size, self.options = test_size, options
        self._grid: FactorGrid | None = None
        self._store: Storage | None = None

    def load(self) -> None:
        if self.splits:
            return
        data = GRIDS[self.name](self.root, **self.options)
        total = data.num_cells
        if self.val_size + self.test_size >= total:
            raise ConfigError(
                f"dataset.val_size={self.val_size} and dataset.test_size={self.test_size} leave no training "
                f"images of {self.name}'s {total}; lower them"
            )
        self._grid, self._store = data, Storage(data.storage)
        classes = np.stack(np.unravel_index(np.arange(total), data.sizes), axis=1)
        table = torch.from_numpy(
            np.stack([data.values[k][classes[:, k]] for k in data.exposed], axis=1).astype(np.float32)
        )
        perm = torch.randperm(total, generator=torch.Generator().manual_seed(self.split_seed))
        index = {
            "val": perm[: self.val_size],
            "test": perm[self.val_size : self.val_size + self.test_size],
            "train": perm[self.val_size + self.test_size :],
        }
        self.splits = {s: GridSplit(i, table[i], data, self._store) for s, i in index.items()}
        names = tuple(data.names[k] for k in data.exposed)
        self._info = DataInfo(self.name, data.shape, data.levels, factor_names=names)
        c, h, w = data.shape
        log.info(
            "dataset %s (%s): %d train / %d val / %d test images, %dx%dx%d, factors %s, %s in memory",
            self.name,
            data.source,
            len(index["train"]),
            len(index["val"]),
            len(index["test"]),
            h,
            w,
            c,
            ", ".join(f"{n} {len(v)}" for n, v in zip(data.names, data.values, strict=True)),
            memory_size(data.storage.numel() * data.storage.element_size()),
        )

    def ground_truth(self) -> GroundTruthData:
        """The factors as a sampler by class (for the disentanglement metrics), over the whole grid."""
        self.load()
        assert self._grid is not None and self._store is not None
        return GridGroundTruth(self._grid, self._store)


def require_file(path: Path, name: str, get: str) -> Path:
    """``path`` when it is a file, else the one-line error that names it and where to get it."""
    if not path.is_file():
        raise DataError(
            f"dataset={name} needs {path}, which is missing; {get}, or point dataset.root (env VAEZOO_DATA) "
            "at the folder that holds it"
        )
    return path


def dsprites_grid(root: Path, decode: Decode, channels: int, name: str) -> FactorGrid:
    """dSprites (generated, or the official npz in ``<root>/dsprites/``) as a grid of its five varying
    factors, its bit-packed rows decoded by ``decode``: the base of Color-, Noisy- and Scream-dSprites.

    The grid's sizes are read from the file's factor classes, so a smaller file (a stand-in) is a
    smaller grid of the published values; the generated copy is always the full 3x6x40x32x32.
    """
    from vaezoo.data.dsprites import FACTOR_SIZES, SIZE, VARYING, factor_values, load_dsprites

    data = load_dsprites(root)
    classes = data.classes[:, 1:]
    if len(classes) != len(data.packed) or (data.classes[:, 0] != 0).any():
        raise DataError(f"{data.source}: latents_classes do not match imgs (one row per image, color 0)")
    sizes = tuple(int(s) for s in classes.max(0) + 1)
    published = factor_values()[1:]
    if any(s > len(v) for s, v in zip(sizes, published, strict=True)):
        raise DataError(f"{data.source}: factor classes {sizes} exceed dSprites' {FACTOR_SIZES[1:]}")
    warn_if_not_official(name, sizes, FACTOR_SIZES[1:], data.source)
    return FactorGrid(
        names=VARYING,
        values=[v[:s] for v, s in zip(published, sizes, strict=True)],
        storage=data.packed,
        decode=decode,
        shape=(channels, SIZE, SIZE),
        source=data.source,
        row_of_cell=cells_of_classes(classes, sizes, data.source),
    )
