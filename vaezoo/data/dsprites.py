"""dSprites (Matthey et al. 2017): 64×64 binary sprites with five known factors, generated to the
published specification or read from the official npz, and held bit-packed (8 pixels per byte).

Layout as in the official file: image ``i`` has factor classes ``np.unravel_index(i, (1, 3, 6, 40, 32,
32))`` for (color, shape, scale, orientation, posX, posY); posY varies fastest. The generated images
follow the spec (square, ellipse, heart; scale linspace(0.5, 1, 6); orientation linspace(0, 2π, 40);
positions linspace(0, 1, 32), one pixel apart) but are not byte-identical to the official file.
"""

from __future__ import annotations

import logging
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vaezoo.data.datamodule import InMemoryDataModule, TensorSplit
from vaezoo.data.factors import GroundTruthData
from vaezoo.data.info import DataInfo
from vaezoo.data.safe_load import CARRIES_CODE
from vaezoo.errors import ConfigError, DataError

log = logging.getLogger(__name__)

OFFICIAL_FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
CACHE_FILE = "dsprites_generated_v1_packed.npz"
FACTOR_NAMES = ("color", "shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (1, 3, 6, 40, 32, 32)
#: The five factors that vary (color has a single value and is left out, as in disentanglement_lib).
VARYING = FACTOR_NAMES[1:]
SIZE = 64
#: Half-width in pixels of the square at scale 1 (the ellipse's long half-axis, the heart's half-width).
SPRITE_RADIUS = 10.0
#: The sprite centre moves from this pixel coordinate to this + 31, one pixel per position step.
FIRST_CENTRE = 16.0


def factor_values() -> list[np.ndarray]:
    """The published value grids, in the official file's column order."""
    return [
        np.ones(1),
        np.arange(1.0, 4.0),
        np.linspace(0.5, 1.0, 6),
        np.linspace(0.0, 2 * np.pi, 40),
        np.linspace(0.0, 1.0, 32),
        np.linspace(0.0, 1.0, 32),
    ]


def heart_outline(points: int = 256) -> np.ndarray:
    """The standard parametric heart curve, centred on its bounding box and scaled to half-width 1."""
    t = np.linspace(0, 2 * np.pi, points, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    y = -(y - (y.max() + y.min()) / 2)  # image rows grow downwards: the lobes at the top
    return np.stack([x, y], axis=1) / 16.0


def inside_polygon(px: np.ndarray, py: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over points (any shape) and the polygon's edges."""
    x0, y0 = polygon[:, 0], polygon[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    px, py = px[..., None], py[..., None]
    crosses = (y0 > py) != (y1 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
    return np.logical_xor.reduce(crosses & (px < x_at), axis=-1)


def render_stamps(shape: int, scale: float, orientations: np.ndarray) -> np.ndarray:
    """Sprites centred at pixel (32, 32) of a 64×64 canvas: bool [orientations, 64, 64].

    A pixel is on when its centre falls inside the shape rotated by the orientation (counter-clockwise).
    """
    centre = SIZE / 2
    grid = np.arange(SIZE) + 0.5 - centre
    v, u = np.meshgrid(grid, grid, indexing="ij")  # v: rows (down), u: columns (right)
    cos, sin = np.cos(orientations)[:, None, None], np.sin(orientations)[:, None, None]
    # Rotate the pixel back into the sprite's frame.
    a = (cos * u - sin * v) / (SPRITE_RADIUS * scale)
    b = (sin * u + cos * v) / (SPRITE_RADIUS * scale)
    if shape == 0:  # square
        return np.maximum(np.abs(a), np.abs(b)) <= 1.0
    if shape == 1:  # ellipse, 2:1
        return a**2 + (2 * b) ** 2 <= 1.0
    return inside_polygon(a, b, heart_outline())


def factor_classes() -> np.ndarray:
    """The factor classes [737280, 6] of every image, in the official order (posY varies fastest)."""
    total = int(np.prod(FACTOR_SIZES))
    return np.stack(np.unravel_index(np.arange(total), FACTOR_SIZES), axis=1).astype(np.int64)


def render_block(shape: int, scale: float) -> np.ndarray:
    """All images of one (shape, scale), bit-packed [40 * 32 * 32, 512] uint8 in the official order.

    The 40 orientations are rendered once and placed at the 32×32 positions by integer shifts
    (sliding-window views): each row is shifted to the 32 x positions and bit-packed first, so the 32 y
    positions select rows of 8 bytes, and no unpacked copy of the block (160 MB of booleans) is made.
    """
    pad = 32
    stamps = render_stamps(shape, scale, factor_values()[3])
    padded = np.zeros((len(stamps), SIZE + 2 * pad, SIZE + 2 * pad), dtype=bool)
    padded[:, pad:-pad, pad:-pad] = stamps
    # Centre at FIRST_CENTRE + i: image[r, c] = stamp[r + 16 - i_y, c + 16 - i_x]
    offsets = pad + int(SIZE / 2 - FIRST_CENTRE) - np.arange(32)
    columns = np.lib.stride_tricks.sliding_window_view(padded, SIZE, axis=2)[:, :, offsets]  # [o, row, x, 64]
    packed_rows = np.packbits(columns, axis=-1)  # [orient, padded row, posX, 8 bytes]
    block = np.lib.stride_tricks.sliding_window_view(packed_rows, SIZE, axis=1)[:, offsets]  # o, y, x, 8, 64
    # official order: posX, then posY fastest; each image row by row, 8 bytes a row
    return np.ascontiguousarray(block.transpose(0, 2, 1, 4, 3)).reshape(-1, SIZE * SIZE // 8)


def generate_packed() -> tuple[np.ndarray, np.ndarray]:
    """All 737,280 images, bit-packed [N, 512] uint8, and the latents_classes [N, 6] in official order."""
    scales = factor_values()[2]
    packed = np.concatenate([render_block(shape, float(scale)) for shape in range(3) for scale in scales])
    return packed, factor_classes()


@dataclass
class DSprites:
    packed: Tensor  # uint8 [N, 512]
    classes: np.ndarray  # int64 [N, 6]
    source: str


def load_dsprites(root: Path) -> DSprites:
    """The official npz when it is in ``<root>/dsprites/``, else the generated cache (made on first use)."""
    folder = root / "dsprites"
    official, cache = folder / OFFICIAL_FILE, folder / CACHE_FILE
    if official.is_file():
        # Only the plain arrays are read: the official file's "metadata" entry is a pickled object,
        # which allow_pickle=False keeps from ever being unpickled.
        try:
            with np.load(official, allow_pickle=False) as data:
                imgs, classes = data["imgs"], data["latents_classes"].astype(np.int64)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            reason = " ".join(str(err).split())[:100] or type(err).__name__
            if "allow_pickle" in reason:  # numpy's words for an object array, which would unpickle
                reason = CARRIES_CODE
            raise DataError(
                f"{official} is not the official dSprites file ({reason}); delete it to use the generated "
                "copy, or download it again"
            ) from None
        packed = np.concatenate(
            [
                np.packbits(imgs[i : i + 65536].reshape(-1, SIZE * SIZE), axis=1)
                for i in range(0, len(imgs), 65536)
            ]
        )
        return DSprites(torch.from_numpy(packed), classes, str(official))
    if not cache.is_file():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DataError(
                f"dsprites: cannot create {folder} ({err.strerror}); point dataset.root (env VAEZOO_DATA) "
                "at a writable folder"
            ) from err
        started = time.perf_counter()
        packed, classes = generate_packed()
        seconds = time.perf_counter() - started
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, packed=packed)
        tmp.replace(cache)
        log.info(
            "dsprites: generated %d images in %.1f s; cached bit-packed in %s (%.0f MB)",
            len(packed),
            seconds,
            cache,
            cache.stat().st_size / 1e6,
        )
    with np.load(cache, allow_pickle=False) as cached:
        packed = cached["packed"]
    if packed.shape != (int(np.prod(FACTOR_SIZES)), SIZE * SIZE // 8):
        raise DataError(f"{cache} holds {packed.shape} packed images, not dSprites'; delete it to regenerate")
    return DSprites(torch.from_numpy(packed), factor_classes(), str(cache))


_SHIFTS = torch.arange(7, -1, -1, dtype=torch.uint8)


def unpack(packed: Tensor) -> Tensor:
    """Bit-packed rows [B, 512] -> float images [B, 1, 64, 64] in {0, 1}."""
    bits = packed.unsqueeze(-1).bitwise_right_shift(_SHIFTS.to(packed.device)).bitwise_and_(1)
    return bits.reshape(-1, 1, SIZE, SIZE).float()


def ground_truth(data: DSprites) -> GroundTruthData:
    """The five varying factors (color has one value), sampled by class as disentanglement_lib does."""
    values = factor_values()
    strides = np.array([int(np.prod(FACTOR_SIZES[i + 1 :])) for i in range(len(FACTOR_SIZES))])

    def observe(classes: np.ndarray) -> Tensor:
        index = classes @ strides[1:]  # color class is 0
        order = data.classes[index, 1:]
        assert (order == classes).all(), "dsprites images are not in the official order"
        return unpack(data.packed[torch.from_numpy(index)])

    return GroundTruthData(VARYING, values[1:], observe)


class PackedSplit(TensorSplit):
    """A split held bit-packed (uint8 [N, 512]); a batch is unpacked to float 0/1 images on access."""

    def __init__(self, packed: Tensor, factors: Tensor) -> None:
        super().__init__(packed, None, 2, False, factors)

    def to(self, device: torch.device) -> PackedSplit:
        return PackedSplit(self.x.to(device), self.factors)

    def __getitem__(self, index: Tensor) -> dict[str, Tensor]:
        return {"x": unpack(self.x[index.to(self.x.device)])}


class DSpritesDataModule(InMemoryDataModule):
    """dSprites in memory, bit-packed (94 MB per 184k images): never 737k float or even uint8 images.

    Validation and test are ``val_size`` and ``test_size`` images drawn by a permutation seeded by
    ``split_seed``; the rest trains. Every split carries its factor values [N, 5] (``splits[s].factors``)
    and :meth:`ground_truth` serves the disentanglement metrics.
    """

    def __init__(
        self,
        name: str = "dsprites",
        root: str = "data",
        batch_size: int = 64,
        eval_batch_size: int = 500,
        val_size: int = 5000,
        test_size: int = 5000,
        split_seed: int = 0,
        on_device: bool = True,
    ) -> None:
        if name != "dsprites":
            raise ConfigError(f"dataset.name={name} with the dsprites data module; use dataset=dsprites")
        super().__init__(
            "dsprites",
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
        total = int(np.prod(FACTOR_SIZES))
        if val_size < 1 or test_size < 1 or val_size + test_size >= total:
            raise ConfigError(
                f"dataset.val_size={val_size} and dataset.test_size={test_size} must be >= 1 and leave "
                f"training images of the {total}"
            )
        self.test_size = test_size
        self._data: DSprites | None = None

    def load(self) -> None:
        if self.splits:
            return
        self._data = load_dsprites(self.root)
        values = factor_values()
        table = torch.from_numpy(
            np.stack([values[k][self._data.classes[:, k]] for k in range(1, 6)], axis=1)
        ).float()
        perm = torch.randperm(
            len(self._data.packed), generator=torch.Generator().manual_seed(self.split_seed)
        )
        index = {
            "val": perm[: self.val_size],
            "test": perm[self.val_size : self.val_size + self.test_size],
            "train": perm[self.val_size + self.test_size :],
        }
        self.splits = {s: PackedSplit(self._data.packed[i], table[i]) for s, i in index.items()}
        self._info = DataInfo(
            "dsprites", (1, SIZE, SIZE), 2, factor_names=VARYING, train_size=len(index["train"])
        )
        log.info(
            "dataset dsprites (%s): %d train / %d val / %d test images, 64x64 binary, bit-packed (%.0f MB)",
            self._data.source,
            len(index["train"]),
            len(index["val"]),
            len(index["test"]),
            self._data.packed.numel() / 1e6,
        )

    def ground_truth(self) -> GroundTruthData:
        """The factors as a sampler by class (for the disentanglement metrics), over all 737,280 images."""
        self.load()
        assert self._data is not None
        return ground_truth(self._data)
