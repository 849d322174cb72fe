"""MPI3D (Gondal et al. 2019, the NeurIPS 2019 disentanglement challenge): 64x64 RGB images of a
robot arm holding an object, every combination of seven factors once, in three variants: ``toy``
(simple renders), ``realistic`` (realistic renders) and ``real`` (photographs).

Read as disentanglement_lib reads it: ``<root>/mpi3d_<variant>/mpi3d_<variant>.npz`` with ``images``
uint8 [N, 64, 64, 3] in row-major factor order (the last factor fastest), no labels. Factors: object
colour (4; 6 for real), object shape (4; 6 for real), object size 2, camera height 3, background
colour 3, horizontal and vertical axis 40 each. ``factor_sizes`` replaces the variant's sizes for a
file with a smaller grid in the same order. Held as uint8 (5.7 GB for toy, 12.7 GB for real).
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vaezoo.data.grid import FactorGrid, grid, require_file
from vaezoo.data.safe_load import CARRIES_CODE
from vaezoo.data.shapes3d import as_float_images
from vaezoo.errors import ConfigError, DataError

URL = "https://storage.googleapis.com/disentanglement_dataset/Final_Dataset/mpi3d_{}.npz"
FACTOR_NAMES = (
    "object_color",
    "object_shape",
    "object_size",
    "camera_height",
    "background_color",
    "horizontal_axis",
    "vertical_axis",
)
FACTOR_SIZES = {
    "toy": (4, 4, 2, 3, 3, 40, 40),
    "realistic": (4, 4, 2, 3, 3, 40, 40),
    "real": (6, 6, 2, 3, 3, 40, 40),
}


def read_images(path: Path, fix: str) -> np.ndarray:
    """``images`` of an MPI3D npz (no pickles), checked to be uint8 [N, 64, 64, 3]."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "images" not in data.files:
                raise DataError(
                    f"{path} has no 'images' array (it has {', '.join(data.files) or 'none'}); {fix}"
                )
            images = data["images"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        reason = " ".join(str(err).split())[:100] or type(err).__name__
        if "allow_pickle" in reason:  # numpy's words for an object array, which would unpickle
            reason = CARRIES_CODE
        raise DataError(f"{path} is not an MPI3D npz ({reason}); {fix}") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (64, 64, 3):
        raise DataError(
            f"{path}: images are {images.dtype} {list(images.shape)}, not uint8 [N, 64, 64, 3]; {fix}"
        )
    return images


@grid("mpi3d")
def load_mpi3d(root: Path, variant: str = "toy", factor_sizes: Sequence[int] | None = None) -> FactorGrid:
    """``<root>/mpi3d_<variant>/mpi3d_<variant>.npz`` as a grid of its seven factors."""
    if variant not in FACTOR_SIZES:
        raise ConfigError(
            f"dataset.variant={variant} is not an MPI3D variant; choose {', '.join(FACTOR_SIZES)}"
        )
    sizes = tuple(int(s) for s in (factor_sizes if factor_sizes is not None else FACTOR_SIZES[variant]))
    if len(sizes) != 7 or min(sizes) < 1:
        raise ConfigError(f"dataset.factor_sizes={list(sizes)} must be seven integers >= 1 (or null)")
    get = f"download {URL.format(variant)} to it"
    path = require_file(root / f"mpi3d_{variant}" / f"mpi3d_{variant}.npz", "mpi3d", get)
    images = read_images(path, get.replace("to it", "again"))
    if len(images) != int(np.prod(sizes)):
        raise DataError(
            f"{path} holds {len(images)} images, but the {'x'.join(map(str, sizes))} factor grid of mpi3d "
            f"{variant} has {int(np.prod(sizes))}; download it again ({URL.format(variant)}), or set "
            "dataset.factor_sizes for a smaller grid"
        )
    return FactorGrid(
        names=FACTOR_NAMES,
        values=[np.arange(s, dtype=np.float64) for s in sizes],
        storage=torch.from_numpy(images),
        decode=as_float_images,
        shape=(3, 64, 64),
        source=str(path),
    )
