"""Cars3D (Reed et al. 2015, "Deep Visual Analogy-Making"), as Locatello et al. 2019 use it: 183 car
models rendered at 4 elevations and 24 azimuths, resized to 64x64 RGB: 17,568 images.

Read as disentanglement_lib reads it: every ``*.mat`` file in ``<root>/cars/`` (the ``cars`` folder of
Reed's ``nips2015-analogy-data.tar.gz``) holds one car as ``im``, uint8 [H, W, 3, 24 azimuths, 4
elevations]; images are shrunk to 64x64 with PIL's Lanczos filter (its ``ANTIALIAS``). The factors are
elevation, azimuth and the car (object type), in that order. The car's class is its file's position
in name order (disentanglement_lib takes the directory listing's order, which the file system fixes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vaezoo.data.grid import FactorGrid, grid, warn_if_not_official
from vaezoo.data.shapes3d import as_float_images
from vaezoo.errors import DataError

URL = "http://www.scottreed.info/files/nips2015-analogy-data.tar.gz"
GET = f"download {URL} and unpack its data/cars folder as <root>/cars"
FACTOR_NAMES = ("elevation", "azimuth", "object_type")
FACTOR_SIZES = (4, 24, 183)


def read_car(path: Path) -> np.ndarray:
    """One car's renders as uint8 [azimuths, elevations, 64, 64, 3] (checked; one-line DataError)."""
    import scipy.io

    try:
        mesh = scipy.io.loadmat(str(path))["im"]
    except KeyError:
        raise DataError(f"{path} holds no 'im' array, so it is not a Cars3D file; {GET}") from None
    except (ValueError, OSError, TypeError, NotImplementedError) as err:
        raise DataError(f"{path} is not a readable MATLAB file ({type(err).__name__}); {GET}") from None
    if not isinstance(mesh, np.ndarray) or mesh.dtype != np.uint8 or mesh.ndim != 5 or mesh.shape[2] != 3:
        shape = list(getattr(mesh, "shape", []))
        raise DataError(
            f"{path}: 'im' is {getattr(mesh, 'dtype', '?')} {shape}, not uint8 [H, W, 3, 24, 4]; {GET}"
        )
    if mesh.shape[0] != mesh.shape[1]:
        raise DataError(f"{path}: renders are {mesh.shape[1]}x{mesh.shape[0]}, not square; {GET}")
    views = np.einsum("abcde->deabc", mesh)  # [azimuth, elevation, H, W, 3]
    if views.shape[2] == 64:
        return np.ascontiguousarray(views)
    out = np.empty((*views.shape[:2], 64, 64, 3), dtype=np.uint8)
    for a in range(views.shape[0]):
        for e in range(views.shape[1]):
            image = Image.fromarray(views[a, e]).resize((64, 64), Image.Resampling.LANCZOS)
            out[a, e] = np.asarray(image)
    return out


@grid("cars3d")
def load_cars3d(root: Path) -> FactorGrid:
    """Every car in ``<root>/cars/`` as one grid (elevation, azimuth, car)."""
    folder = root / "cars"
    files = sorted(folder.glob("*.mat")) if folder.is_dir() else []
    if not files:
        raise DataError(
            f"dataset=cars3d needs the .mat files of Reed et al.'s cars in {folder}, none found; {GET}"
        )
    cars = [read_car(path) for path in files]
    azimuths, elevations = cars[0].shape[:2]
    for path, car in zip(files, cars, strict=True):
        if car.shape[:2] != (azimuths, elevations):
            raise DataError(
                f"{path} has {car.shape[0]} azimuths x {car.shape[1]} elevations, {files[0].name} "
                f"{azimuths} x {elevations}; every car must have the same views; {GET}"
            )
    sizes = (elevations, azimuths, len(files))
    warn_if_not_official("cars3d", sizes, FACTOR_SIZES, str(folder))
    # Stored in grid order (elevation, azimuth, car; the car fastest): row = cell.
    images = np.stack(cars, axis=2).transpose(1, 0, 2, 3, 4, 5).reshape(-1, 64, 64, 3)
    return FactorGrid(
        names=FACTOR_NAMES,
        values=[np.arange(s, dtype=np.float64) for s in sizes],
        storage=torch.from_numpy(np.ascontiguousarray(images)),
        decode=as_float_images,
        shape=(3, 64, 64),
        source=str(folder),
    )
