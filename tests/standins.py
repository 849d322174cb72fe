"""Tiny stand-ins for datasets in their official on-disk formats, and image folders / array files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

CELEBA_ATTRIBUTES = [f"Attr_{i:02d}" for i in range(40)]


def write_cifar10(root: Path, per_batch: int = 8, n_test: int = 10, seed: int = 0) -> Path:
    """``<root>/cifar-10-batches-py/``: data_batch_1..5, test_batch, batches.meta, as python pickles."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        batch = {
            "batch_label": name,
            "labels": rng.integers(0, 10, n).tolist(),
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "filenames": [f"{name}_{i}.png" for i in range(n)],
        }
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {
        "num_cases_per_batch": per_batch,
        "label_names": [f"class{i}" for i in range(10)],
        "num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return root


def write_celeba(root: Path, counts: tuple[int, int, int] = (24, 8, 8), seed: int = 0) -> Path:
    """``<root>/celeba/``: img_align_celeba/*.jpg (178x218), list_eval_partition.txt, list_attr_celeba.txt."""
    rng = np.random.default_rng(seed)
    folder = root / "celeba"
    images = folder / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    partition, attributes = [], []
    number = 0
    for code, n in enumerate(counts):
        for _ in range(n):
            number += 1
            name = f"{number:06d}.jpg"
            Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(
                images / name, quality=90
            )
            partition.append(f"{name} {code}")
            signs = rng.choice([-1, 1], 40)
            attributes.append(name + " " + " ".join(f"{s:2d}" for s in signs))
    (folder / "list_eval_partition.txt").write_text("\n".join(partition) + "\n")
    header = [str(number), " ".join(CELEBA_ATTRIBUTES)]
    (folder / "list_attr_celeba.txt").write_text("\n".join(header + attributes) + "\n")
    return root


def class_images(n_per_class: int = 100, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Colour images of two classes (a brighter red or green channel) as N x H x W x 3 uint8, labels."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(2):
        for _ in range(n_per_class):
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            image[..., label] = image[..., label] // 2 + 128
            images.append(image)
            labels.append(label)
    return np.stack(images), np.array(labels)


def write_folder(folder: Path, images: np.ndarray, labels: np.ndarray | None, names=("cats", "dogs")) -> Path:
    """PNG files, in class sub-folders ``names[label]`` when labels are given."""
    for i, image in enumerate(images):
        sub = folder if labels is None else folder / names[int(labels[i])]
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.squeeze()).save(sub / f"{i:04d}.png")
    return folder


# --- ground-truth factor datasets (vaezoo.data.grid), each image's pixels encoding its grid cell -------
def write_dsprites(root: Path, sizes: tuple[int, ...] = (3, 2, 2, 2, 2)) -> Path:
    """``<root>/dsprites/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` (imgs, latents_classes,
    latents_values) over a small grid of the five varying factors; image of cell c lights its first
    c + 1 pixels (raster order). The official file's pickled ``metadata`` entry is left out."""
    from vaezoo.data.dsprites import OFFICIAL_FILE, factor_values

    total = int(np.prod(sizes))
    classes = np.stack(np.unravel_index(np.arange(total), sizes), axis=1)
    latents_classes = np.concatenate([np.zeros((total, 1), np.int64), classes], axis=1)
    values = factor_values()
    latents_values = np.stack([values[k][latents_classes[:, k]] for k in range(6)], axis=1)
    imgs = np.zeros((total, 64 * 64), np.uint8)
    for cell in range(total):
        imgs[cell, : cell + 1] = 1
    folder = root / "dsprites"
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(
        folder / OFFICIAL_FILE,
        imgs=imgs.reshape(total, 64, 64),
        latents_classes=latents_classes,
        latents_values=latents_values,
    )
    return root


def write_scream(path: Path, size: tuple[int, int] = (120, 90)) -> Path:
    """A stand-in for The Scream (PNG, lossless): red rises 1/255 per row, green per column, blue 0."""
    width, height = size
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    image = np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")
    return path


def cell_images(total: int, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 images [total, *shape], image c filled with 4 * c (so c = pixel / 4; total <= 64)."""
    assert total <= 64
    return np.broadcast_to(
        (4 * np.arange(total, dtype=np.uint8)).reshape(-1, *[1] * len(shape)), (total, *shape)
    )


def write_shapes3d(root: Path, sizes: tuple[int, ...] = (2, 2, 2, 2, 2, 2), seed: int = 0) -> Path:
    """``<root>/3dshapes/3dshapes.h5``: images uint8 [N, 64, 64, 3], labels float64 [N, 6] with the
    published factor values, rows shuffled (the loader must not rely on the order)."""
    import h5py

    total = int(np.prod(sizes))
    grids = [
        np.linspace(0, 0.9, 10),
        np.linspace(0, 0.9, 10),
        np.linspace(0, 0.9, 10),
        np.linspace(0.75, 1.25, 8),
        np.arange(4.0),
        np.linspace(-30, 30, 15),
    ]
    classes = np.stack(np.unravel_index(np.arange(total), sizes), axis=1)
    labels = np.stack([grids[k][classes[:, k]] for k in range(6)], axis=1)
    images = cell_images(total, (64, 64, 3))
    order = np.random.default_rng(seed).permutation(total)
    folder = root / "3dshapes"
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / "3dshapes.h5", "w") as f:
        f.create_dataset("images", data=images[order])
        f.create_dataset("labels", data=labels[order])
    return root


def write_norb_matrix(path: Path, array: np.ndarray) -> None:
    """One file in the NORB binary-matrix format (magic, ndim, dims padded to 3, little-endian data)."""
    magic = {np.dtype(np.uint8): 0x1E3D4C55, np.dtype("<i4"): 0x1E3D4C54}[array.dtype]
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    header = np.array([magic, array.ndim, *dims], dtype="<i4")
    path.write_bytes(header.tobytes() + np.ascontiguousarray(array).tobytes())


def write_smallnorb(
    root: Path, categories: int = 2, elevations: int = 2, azimuths: int = 3, lightings: int = 2
) -> Path:
    """``<root>/small_norb/``: the training and testing -dat/-cat/-info.mat files, instance 1 in the
    training chunk and 0 in the testing one; 96x96 stereo pairs filled with 4 * grid cell (cell over
    category, instance, elevation, azimuth, lighting), azimuth stored as 0, 2, 4, ... as in NORB."""
    from vaezoo.data.smallnorb import CHUNKS, file_name

    folder = root / "small_norb"
    folder.mkdir(parents=True, exist_ok=True)
    sizes = (categories, 2, elevations, azimuths, lightings)
    for chunk, instance in zip(CHUNKS, (1, 0), strict=True):
        grid = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)
        grid = grid[grid[:, 1] == instance]
        cells = np.ravel_multi_index(tuple(grid.T), sizes)
        dat = np.ascontiguousarray(
            np.broadcast_to((4 * cells).astype(np.uint8)[:, None, None, None], (len(grid), 2, 96, 96))
        )
        info = np.stack([grid[:, 1], grid[:, 2], 2 * grid[:, 3], grid[:, 4]], axis=1).astype("<i4")
        write_norb_matrix(folder / file_name(chunk, "dat"), dat)
        write_norb_matrix(folder / file_name(chunk, "cat"), grid[:, 0].astype("<i4"))
        write_norb_matrix(folder / file_name(chunk, "info"), info)
    return root


def write_cars3d(root: Path, cars: int = 3, azimuths: int = 3, elevations: int = 2, size: int = 128) -> Path:
    """``<root>/cars/car_NNN_mesh.mat`` (MATLAB v5): ``im`` uint8 [size, size, 3, azimuths, elevations],
    each view filled with 4 * its grid cell over (elevation, azimuth, car)."""
    import scipy.io

    folder = root / "cars"
    folder.mkdir(parents=True, exist_ok=True)
    sizes = (elevations, azimuths, cars)
    for car in range(cars):
        im = np.zeros((size, size, 3, azimuths, elevations), np.uint8)
        for a in range(azimuths):
            for e in range(elevations):
                im[:, :, :, a, e] = 4 * np.ravel_multi_index((e, a, car), sizes)
        scipy.io.savemat(folder / f"car_{car + 1:03d}_mesh.mat", {"im": im})
    return root


def write_mpi3d(root: Path, variant: str = "toy", sizes: tuple[int, ...] = (2, 1, 2, 1, 1, 2, 3)) -> Path:
    """``<root>/mpi3d_<variant>/mpi3d_<variant>.npz``: images uint8 [N, 64, 64, 3] in grid order, image
    of cell c filled with 4 * c."""
    total = int(np.prod(sizes))
    folder = root / f"mpi3d_{variant}"
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"mpi3d_{variant}.npz", images=np.ascontiguousarray(cell_images(total, (64, 64, 3))))
    return root
