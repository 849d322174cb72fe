"""Shapes3D (Burgess & Kim 2018, used by Kim & Mnih 2018 and Locatello et al. 2019): 480,000 64x64 RGB
renders of an object in a room, every combination of six factors once.

Read from the official ``3dshapes.h5`` (datasets ``images`` uint8 [N, 64, 64, 3] and ``labels`` float
[N, 6]) in ``<root>/3dshapes/``. Each factor's classes are its distinct label values in increasing
order (floor, wall and object hue 10 each, scale 8, shape 4, orientation 15); the images may be in
any order, and every combination must occur exactly once. The images are held as uint8 (5.9 GB for the
official file) and scaled to [0, 1] per batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vaezoo.data.grid import (
    FactorGrid,
    cells_of_classes,
    classes_from_values,
    grid,
    require_file,
    warn_if_not_official,
)
from vaezoo.errors import DataError

FILE = "3dshapes.h5"
URL = "https://storage.googleapis.com/3d-shapes/3dshapes.h5"
FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
#: Images read per h5py call (the file is read once, in slices, into one uint8 array).
READ_CHUNK = 20_000


def as_float_images(rows: Tensor, cells: Tensor) -> Tensor:
    """uint8 [B, H, W, 3] -> float [B, 3, H, W] in [0, 1]."""
    return rows.permute(0, 3, 1, 2).float().div_(255)


def read_shapes3d(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The ``images`` and ``labels`` of an official-format file, checked (one-line DataError)."""
    import h5py

    fix = f"download it again from {URL}"
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("images", "labels") if k not in f or not isinstance(f[k], h5py.Dataset)]
            if missing:
                raise DataError(
                    f"{path} has no {' or '.join(missing)} dataset, so it is not 3dshapes.h5; {fix}"
                )
            images, labels = f["images"], f["labels"]
            if images.ndim != 4 or images.shape[1:] != (64, 64, 3) or images.dtype != np.uint8:
                raise DataError(
                    f"{path}: images are {images.dtype} {list(images.shape)}, not uint8 [N, 64, 64, 3]; {fix}"
                )
            if labels.shape != (images.shape[0], 6) or labels.dtype.kind != "f":
                raise DataError(
                    f"{path}: labels are {labels.dtype} {list(labels.shape)}, not float "
                    f"[{images.shape[0]}, 6] (one row of six factor values per image); {fix}"
                )
            out = np.empty(images.shape, dtype=np.uint8)
            for start in range(0, len(out), READ_CHUNK):
                part = np.s_[start : min(start + READ_CHUNK, len(out))]
                images.read_direct(out, part, part)
            table = labels[()]
    except OSError as err:
        reason = " ".join(str(err).split())[:100]
        raise DataError(f"{path} is not a readable HDF5 file ({reason}); {fix}") from None
    if not np.isfinite(table).all():
        raise DataError(f"{path}: labels hold non-finite values; {fix}")
    return out, table


@grid("shapes3d")
def load_shapes3d(root: Path) -> FactorGrid:
    """``<root>/3dshapes/3dshapes.h5`` as a grid of its six factors."""
    path = require_file(root / "3dshapes" / FILE, "shapes3d", f"download it from {URL}")
    images, table = read_shapes3d(path)
    classes, values = classes_from_values(table)
    sizes = [len(v) for v in values]
    warn_if_not_official("shapes3d", sizes, FACTOR_SIZES, str(path))
    return FactorGrid(
        names=FACTOR_NAMES,
        values=values,
        storage=torch.from_numpy(images),
        decode=as_float_images,
        shape=(3, 64, 64),
        source=str(path),
        row_of_cell=cells_of_classes(classes, sizes, str(path)),
    )
