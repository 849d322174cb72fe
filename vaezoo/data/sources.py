"""Loaders that turn each named dataset into uint8 tensors, once, at set-up.

Every loader returns :class:`Splits`: images as uint8 [N, C, H, W] with values in 0..levels-1,
labels as int64 [N] (or None). torchvision datasets are loaded with ``download=True`` so users who
are online get the data fetched; offline, a missing dataset is a one-line :class:`DataError`.
"""

from __future__ import annotations

import os
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vaezoo.data.safe_load import CARRIES_CODE
from vaezoo.errors import DataError


@dataclass
class Splits:
    """Raw splits of one dataset. ``val_x`` is None when the dataset has no official validation split."""

    train_x: Tensor
    train_y: Tensor | None
    test_x: Tensor
    test_y: Tensor | None
    levels: int
    num_classes: int | None
    val_x: Tensor | None = None
    val_y: Tensor | None = None
    # Ground-truth factors of variation per split ("train" / "val" / "test" -> float [N, K]) and their
    # names, for disentanglement metrics; class or attribute names when the data has them.
    factors: dict[str, Tensor | None] | None = None
    factor_names: tuple[str, ...] | None = None
    class_names: tuple[str, ...] | None = None


def _missing(name: str, folder: Path, files: list[str], cause: BaseException | None) -> DataError:
    why = f" and it could not be downloaded ({type(cause).__name__})" if cause else ""
    return DataError(
        f"{name} not found in {folder} (expected {', '.join(files)}){why}; put the files there or point "
        "dataset.root (env VAEZOO_DATA) at a folder that has them"
    )


def _idx_size(path: Path) -> int | None:
    """The byte size an IDX file (MNIST's format) must have according to its own header, or None."""
    with path.open("rb") as f:
        header = f.read(4)
        if len(header) < 4 or header[:2] != b"\x00\x00":
            return None
        ndim = header[3]
        dims = f.read(4 * ndim)
        if len(dims) < 4 * ndim:
            return None
    return 4 + 4 * ndim + int(np.prod(np.frombuffer(dims, dtype=">u4").astype(np.int64)))


def check_mnist_files(name: str, cls_name: str, folder: Path) -> None:
    """Name the file to delete when an MNIST-format archive or unpacked file is truncated or corrupt.

    torchvision would otherwise re-download a bad archive (and, offline, report it as missing) or
    fail with a reshape error deep inside its reader.
    """
    import torchvision
    from torchvision.datasets.utils import check_integrity

    if not folder.is_dir():
        return
    for archive, md5 in getattr(torchvision.datasets, cls_name).resources:
        gz = folder / archive
        unpacked = folder / archive.removesuffix(".gz")
        if unpacked.is_file():
            expected = _idx_size(unpacked)
            size = unpacked.stat().st_size
            if expected != size:
                raise DataError(
                    f"{name}: {unpacked} is truncated or corrupt ({size} bytes, its header says "
                    f"{expected if expected is not None else 'nothing readable'}); delete it and vaezoo "
                    f"unpacks it again from {gz.name}"
                )
        elif gz.is_file():
            if not check_integrity(str(gz), md5):
                raise DataError(
                    f"{name}: {gz} is truncated or corrupt (its checksum does not match); delete it and "
                    "download it again (dataset.download=true, online) or copy it again"
                )
            if not os.access(folder, os.W_OK):
                raise DataError(
                    f"{name}: cannot unpack {gz.name}: {folder} is read-only; copy the data folder somewhere "
                    "writable and point dataset.root (env VAEZOO_DATA) at it"
                )


def check_cifar_files(root: Path) -> None:
    """Name a truncated or corrupt CIFAR-10 archive or batch file."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    folder = root / CIFAR10.base_folder
    if folder.is_dir():
        for filename, md5 in CIFAR10.train_list + CIFAR10.test_list:
            if (folder / filename).is_file() and not check_integrity(str(folder / filename), md5):
                raise DataError(
                    f"cifar10: {folder / filename} is truncated or corrupt (checksum mismatch); delete "
                    f"{folder} and vaezoo unpacks it again from {CIFAR10.filename}"
                )
    elif (root / CIFAR10.filename).is_file():
        if not check_integrity(str(root / CIFAR10.filename), CIFAR10.tgz_md5):
            raise DataError(
                f"cifar10: {root / CIFAR10.filename} is truncated or corrupt (checksum mismatch); delete it "
                "and download it again (dataset.download=true, online) or copy it again"
            )
        if not os.access(root, os.W_OK):
            raise DataError(
                f"cifar10: cannot unpack {CIFAR10.filename}: {root} is read-only; copy it somewhere writable "
                "and point dataset.root (env VAEZOO_DATA) at it"
            )


def _torchvision(name: str, cls_name: str, root: Path, download: bool, files: list[str], **kwargs):
    import torchvision

    cls = getattr(torchvision.datasets, cls_name)
    folder = root / cls_name / "raw" if cls_name in ("MNIST", "FashionMNIST") else root
    if root.exists() and not os.access(root, os.R_OK | os.X_OK):
        raise DataError(f"{name}: cannot read {root} (permission denied); make it readable (chmod -R u+rX)")
    if cls_name in ("MNIST", "FashionMNIST"):
        check_mnist_files(name, cls_name, folder)
    elif cls_name == "CIFAR10":
        check_cifar_files(root)
    try:
        return cls(str(root), download=download, **kwargs)
    except PermissionError as err:
        raise DataError(
            f"{name}: cannot write to {err.filename or root}; torchvision unpacks the archives next to "
            "them, so copy the data folder somewhere writable and point dataset.root (env VAEZOO_DATA) at it"
        ) from err
    except (RuntimeError, OSError) as err:
        raise _missing(name, folder, files, err if download else None) from err


_MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def _mnist_like(name: str, cls_name: str) -> Callable[[Path, bool], Splits]:
    def load(root: Path, download: bool) -> Splits:
        train = _torchvision(name, cls_name, root, download, _MNIST_FILES, train=True)
        test = _torchvision(name, cls_name, root, download, _MNIST_FILES, train=False)
        return Splits(
            train_x=train.data.unsqueeze(1).contiguous(),
            train_y=train.targets.long(),
            test_x=test.data.unsqueeze(1).contiguous(),
            test_y=test.targets.long(),
            levels=256,
            num_classes=10,
        )

    return load


def load_digits(root: Path, download: bool) -> Splits:
    """scikit-learn's bundled 8×8 digits (1797 images, 17 grey levels); no download, no root."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = torch.from_numpy(bunch.images.astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    # A fixed permutation (independent of the run's seed) gives the documented 1497 / 300 split.
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(1234))
    test, train = perm[:300], perm[300:]
    return Splits(x[train], y[train], x[test], y[test], levels=17, num_classes=10)


_BINARIZED_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/binarized_mnist_{}.amat"


def load_binarized_mnist(root: Path, download: bool) -> Splits:
    """Larochelle & Murray's statically binarized MNIST: official 50k / 10k / 10k, no labels."""
    folder = root / "binarized_mnist"
    path = folder / "binarized_mnist.npz"
    if not path.is_file():
        err: BaseException | None = None
        if download:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                arrays = {}
                for split in ("train", "valid", "test"):
                    with urllib.request.urlopen(_BINARIZED_URL.format(split), timeout=30) as response:
                        text = response.read().decode()
                    arrays[split] = np.array([r.split() for r in text.splitlines()], dtype=np.uint8)
                np.savez_compressed(path, **arrays)
            except OSError as e:
                err = e
        if not path.is_file():
            raise _missing("binarized_mnist", folder, ["binarized_mnist.npz (train, valid, test)"], err)
    arrays = read_binarized_npz(path)

    def images(key: str) -> Tensor:
        return torch.from_numpy(arrays[key].reshape(-1, 1, 28, 28).astype(np.uint8))

    return Splits(
        images("train"), None, images("test"), None, levels=2, num_classes=None, val_x=images("valid")
    )


def read_binarized_npz(path: Path) -> dict[str, np.ndarray]:
    """The three splits of ``binarized_mnist.npz``, checked: 0/1 integer pixels, 784 per image."""
    fix = f"delete {path} (vaezoo downloads and converts it again when online) or rewrite it"
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = sorted({"train", "valid", "test"} - set(data.files))
            if missing:
                raise DataError(f"binarized_mnist: {path} has no {', '.join(missing)} array; {fix}")
            arrays = {k: data[k] for k in ("train", "valid", "test")}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        if "allow_pickle" in str(err):  # numpy's words for an object array, which would unpickle
            raise DataError(
                f"binarized_mnist: refusing {path}: {CARRIES_CODE} (pickled Python objects); {fix}"
            ) from None
        why = type(err).__name__
        raise DataError(f"binarized_mnist: {path} is truncated or corrupt ({why}); {fix}") from None
    for key, a in arrays.items():
        if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
            raise DataError(
                f"binarized_mnist: {path}[{key}] holds {a.dtype} values, but pixels must be stored as 0/1 "
                f"integers (uint8); convert with (a > 0.5).astype('uint8'), or {fix}"
            )
        if a.size == 0 or a.size % 784 or a.shape[-1] not in (784, 28):
            raise DataError(
                f"binarized_mnist: {path}[{key}] has shape {a.shape}, not [N, 784] (28x28 images); {fix}"
            )
        low, high = int(a.min()), int(a.max())
        if low < 0 or high > 1:
            raise DataError(
                f"binarized_mnist: {path}[{key}] holds values {low}..{high}, but binarized pixels are 0 or "
                f"1; threshold it ((a > 127).astype('uint8') for 0-255 data), or {fix}"
            )
    return arrays


SOURCES: dict[str, Callable[[Path, bool], Splits]] = {
    "digits": load_digits,
    "mnist": _mnist_like("mnist", "MNIST"),
    "fashion_mnist": _mnist_like("fashion_mnist", "FashionMNIST"),
    "binarized_mnist": load_binarized_mnist,
}
# cifar10 and celeba add themselves (vaezoo.data.cifar10, vaezoo.data.celeba), as data sources that are
# also opened without decoding (vaezoo.data.source.OPENERS).
