"""SmallNORB (LeCun et al. 2004) as Locatello et al. 2019 use it: the 48,600 grey 96x96 photographs of
toys (training and test files together, left camera), resized to 64x64, with four ground-truth factors.

Read from the official binary-matrix files in ``<root>/small_norb/``:
``smallnorb-5x46789x9x18x6x2x96x96-training-{dat,cat,info}.mat`` and
``smallnorb-5x01235x9x18x6x2x96x96-testing-{dat,cat,info}.mat`` (gunzipped). ``dat`` holds uint8
[N, 2, 96, 96] (a stereo pair), ``cat`` the category [N], ``info`` [N, 4]: instance, elevation,
azimuth (0, 2, ..., 34) and lighting. The factors are category 5, elevation 9, azimuth 18 and lighting
6; the instance (10 per category) is a nuisance that the metrics' sampler draws at random, as in
disentanglement_lib. Images are resized with PIL's Lanczos filter (its ``ANTIALIAS``), as there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
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

URL = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"
CHUNKS = ("5x46789x9x18x6x2x96x96-training", "5x01235x9x18x6x2x96x96-testing")
FACTOR_NAMES = ("category", "instance", "elevation", "azimuth", "lighting")
FACTOR_SIZES = (5, 10, 9, 18, 6)
#: The binary-matrix format's magic numbers (its header's first int32) and the element types they name.
MAGIC = {
    0x1E3D4C55: np.dtype(np.uint8),
    0x1E3D4C54: np.dtype("<i4"),
    0x1E3D4C51: np.dtype("<f4"),
    0x1E3D4C53: np.dtype("<f8"),
    0x1E3D4C56: np.dtype("<i2"),
}


def file_name(chunk: str, kind: str) -> str:
    return f"smallnorb-{chunk}-{kind}.mat"


def read_binary_matrix(path: Path) -> np.ndarray:
    """One file of the NORB binary-matrix format: int32 magic, int32 ndim, max(3, ndim) int32 dims, data."""
    raw = path.read_bytes()
    fix = f"download it again from {URL} (and gunzip it)"
    if len(raw) < 8:
        raise DataError(f"{path} is too short to be a NORB binary matrix; {fix}")
    magic, ndim = (int(v) for v in np.frombuffer(raw, "<i4", 2))
    if magic not in MAGIC or not 0 < ndim <= 8:
        raise DataError(
            f"{path} is not a NORB binary matrix (magic {magic:#x}, {ndim} dims); is it still gzipped? {fix}"
        )
    offset = 8 + 4 * max(3, ndim)
    dims = tuple(int(d) for d in np.frombuffer(raw, "<i4", ndim, 8)) if len(raw) >= offset else ()
    dtype = MAGIC[magic]
    if len(dims) != ndim or min(dims) < 0 or len(raw) - offset != int(np.prod(dims)) * dtype.itemsize:
        raise DataError(f"{path}: its size does not match its header {list(dims)} (truncated?); {fix}")
    return np.frombuffer(raw, dtype, offset=offset).reshape(dims)


def resize(images: np.ndarray) -> np.ndarray:
    """uint8 [N, 96, 96] -> uint8 [N, 64, 64], each by PIL's Lanczos filter."""
    out = np.empty((len(images), 64, 64), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i] = np.asarray(Image.fromarray(image).resize((64, 64), Image.Resampling.LANCZOS))
    return out


def read_chunk(folder: Path, chunk: str) -> tuple[np.ndarray, np.ndarray]:
    """One official chunk: resized left-camera images [N, 64, 64] and factors [N, 5] (category first)."""
    paths = {
        kind: require_file(
            folder / file_name(chunk, kind), "smallnorb", f"download it from {URL} and gunzip it"
        )
        for kind in ("dat", "cat", "info")
    }
    dat, cat, info = (read_binary_matrix(paths[k]) for k in ("dat", "cat", "info"))
    n = len(dat)
    if dat.dtype != np.uint8 or dat.ndim != 4 or dat.shape[1:] != (2, 96, 96):
        raise DataError(f"{paths['dat']}: {dat.dtype} {list(dat.shape)}, not uint8 [N, 2, 96, 96] images")
    if cat.shape != (n,) or cat.dtype.kind != "i":
        raise DataError(
            f"{paths['cat']}: {cat.dtype} {list(cat.shape)}, not one integer category per image [{n}]"
        )
    if info.shape != (n, 4) or info.dtype.kind != "i":
        raise DataError(f"{paths['info']}: {info.dtype} {list(info.shape)}, not integers [{n}, 4] per image")
    return resize(dat[:, 0]), np.column_stack([cat, info]).astype(np.int64)


def as_float_images(rows: Tensor, cells: Tensor) -> Tensor:
    """uint8 [B, 64, 64] -> float [B, 1, 64, 64] in [0, 1]."""
    return rows.unsqueeze(1).float().div_(255)


@grid("smallnorb")
def load_smallnorb(root: Path) -> FactorGrid:
    """Both official chunks in ``<root>/small_norb/`` as one grid (see the module docstring)."""
    folder = root / "small_norb"
    parts = [read_chunk(folder, chunk) for chunk in CHUNKS]
    images = np.concatenate([p[0] for p in parts])
    classes, values = classes_from_values(np.concatenate([p[1] for p in parts]))
    sizes = [len(v) for v in values]
    warn_if_not_official("smallnorb", sizes, FACTOR_SIZES, str(folder))
    return FactorGrid(
        names=FACTOR_NAMES,
        values=[v.astype(np.float64) for v in values],
        storage=torch.from_numpy(images),
        decode=as_float_images,
        shape=(1, 64, 64),
        source=str(folder),
        row_of_cell=cells_of_classes(classes, sizes, str(folder)),
        nuisance=("instance",),
    )
