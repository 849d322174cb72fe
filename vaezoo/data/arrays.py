"""``dataset=arrays dataset.path=<file>``: images (and labels, factors) from a .npz, .npy or .pt file.

The file holds (names are the keys of a .npz, or of the dict saved with ``torch.save`` in a .pt):
  images         N x H x W (grey), N x H x W x C or N x C x H x W (C = 1 or 3); a .npy or a .pt that
                 holds one array / tensor is just this. 4-D layouts are told apart by which axis is
                 1 or 3; when both are, set ``dataset.layout``.
  labels         optional: class indices [N] or 0/1 attribute rows [N, A]
  factors        optional: ground-truth factors of variation [N, K] (disentanglement metrics use them)
  factor_names   optional: K names (default factor0, factor1, ...); class_names: optional class names
Splits: ``train_images`` / ``val_images`` / ``test_images`` (with ``train_labels``, ``train_factors``,
...), or in a .pt ``{"train": {"images": ..., "labels": ...}, "test": {...}}``; a missing val or
test split is drawn from train with ``dataset.split_seed``. Without split keys the split is seeded.
Values: uint8 0-255 (uint8 holding only 0 and 1, and bool, are binary images), other integers within
0-255, or floats in [0, 1] (only 0.0 and 1.0: binary; otherwise stored as 8-bit, round(x * 255)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from vaezoo.data.safe_load import CARRIES_CODE, UNREADABLE_TORCH_ERRORS, CarriesObjects, load_torch_plain
from vaezoo.data.source import (
    SPLITS,
    ImageSource,
    TensorImages,
    check_factors,
    check_labels,
    opener,
    seeded_split,
)
from vaezoo.data.sources import Splits
from vaezoo.errors import ConfigError, DataError

LAYOUTS = ("auto", "NHW", "NHWC", "NCHW")
FIELDS = ("images", "labels", "factors")


@dataclass
class ArraysSource(ImageSource):
    """Images already read from an array file, as uint8 tensors per split."""

    images: dict[str, Tensor] = field(default_factory=dict)

    def load(self) -> Splits:
        return self.splits_from(self.images)

    def datasets(self) -> dict[str, Dataset]:
        return {s: TensorImages(self.images[s], self.labels.get(s)) for s in SPLITS}


def as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def read_file(path: Path) -> dict[str, Any]:
    """The file's named arrays (a bare array or tensor is ``images``); nothing in it is unpickled."""
    suffix = path.suffix.lower()
    fix = "save plain numeric arrays with numpy.savez / numpy.save, or plain tensors with torch.save"
    try:
        if suffix == ".npy":
            return {"images": np.load(path, allow_pickle=False)}
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            for key, value in arrays.items():
                if not isinstance(value, np.ndarray):  # numpy hands over a member that is not .npy as bytes
                    raise DataError(f"{path}: member {key} is not a .npy array; {fix}")
            return arrays
        if suffix in (".pt", ".pth"):
            data = load_torch_plain(path)
            return data if isinstance(data, dict) else {"images": data}
    except CarriesObjects as refused:
        raise DataError(f"refusing {path}: {CARRIES_CODE} (it calls {refused.culprit}); {fix}") from None
    except ValueError as err:
        if "allow_pickle" in str(err):  # numpy's words for an object array or a pickle in a .npy/.npz
            raise DataError(f"refusing {path}: {CARRIES_CODE} (pickled Python objects); {fix}") from None
        raise _unreadable(path, err, fix) from None
    except (OSError, *UNREADABLE_TORCH_ERRORS) as err:
        raise _unreadable(path, err, fix) from None
    raise ConfigError(f"dataset.path={path} must end in .npz, .npy or .pt")


def _unreadable(path: Path, err: BaseException, fix: str) -> DataError:
    first = str(err).splitlines()[0] if str(err) else type(err).__name__
    return DataError(f"cannot read {path}: {first}; {fix}")


def group_splits(data: dict[str, Any], path: Path) -> dict[str, dict[str, Any]]:
    """{"all": fields} or {"train": fields, ...} by the file's key convention (see the module docstring)."""
    groups: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        nested = data.get(split)
        if isinstance(nested, dict):
            groups[split] = {k: nested[k] for k in FIELDS if k in nested}
        prefixed = {k: data[f"{split}_{k}"] for k in FIELDS if f"{split}_{k}" in data}
        if prefixed:
            groups.setdefault(split, {}).update(prefixed)
    if groups and "images" in data:
        raise DataError(f"{path} has both 'images' and per-split keys; keep one convention")
    if not groups:
        if "images" not in data:
            raise DataError(
                f"{path} has no 'images' array (keys: {', '.join(map(str, data)) or 'none'}); name "
                "the images "
                "'images' (or train_images / test_images)"
            )
        groups["all"] = {k: data[k] for k in FIELDS if k in data}
    for split, fields in groups.items():
        if "images" not in fields:
            raise DataError(
                f"{path}: split {split} has {', '.join(fields)} but no images; add {split}_images"
            )
    if "all" not in groups and "train" not in groups:
        raise DataError(f"{path} has {', '.join(groups)} splits but no train split; add train_images")
    return groups


def to_nchw(images: np.ndarray, layout: str, what: str) -> np.ndarray:
    """Images as N x C x H x W with C in (1, 3), by ``layout`` or by the rule in the module docstring."""
    if layout not in LAYOUTS:
        raise ConfigError(f"dataset.layout={layout!r} must be one of {', '.join(LAYOUTS)}")
    shape = images.shape
    if images.ndim == 3 and layout in ("auto", "NHW"):
        return images[:, None]
    if images.ndim == 4 and layout != "NHW":
        if layout == "auto":
            first, last = shape[1] in (1, 3), shape[3] in (1, 3)
            if first and last:
                raise DataError(
                    f"{what}: images of shape {shape} could be N x C x H x W or N x H x W x C; set "
                    "dataset.layout=NCHW or dataset.layout=NHWC"
                )
            layout = "NCHW" if first else "NHWC" if last else "none"
        if layout == "NHWC":
            images = images.transpose(0, 3, 1, 2)
        if layout != "none" and images.shape[1] in (1, 3):
            return images
    raise DataError(
        f"{what}: images of shape {shape} (layout {layout}) are not N x H x W, N x H x W x C or "
        "N x C x H x W "
        "with 1 or 3 channels; reshape them (e.g. flat rows to N x H x W) or set dataset.layout"
    )


def value_kind(images: np.ndarray, what: str) -> str:
    """binary, uint8 or float (in [0, 1]); refuses values out of range, naming them."""
    kind = images.dtype.kind
    if kind == "b":
        return "binary"
    if kind in "iu":
        lo, hi = (int(images.min()), int(images.max())) if images.size else (0, 0)
        if lo < 0 or hi > 255:
            raise DataError(
                f"{what}: integer pixel values span {lo}..{hi}, outside 0..255; scale them to uint8 0-255 "
                "or to floats in [0, 1]"
            )
        return "binary" if hi <= 1 else "uint8"
    if kind == "f":
        if not np.all(np.isfinite(images)):
            raise DataError(f"{what}: images contain NaN or infinite values; remove or replace them")
        lo, hi = (float(images.min()), float(images.max())) if images.size else (0.0, 0.0)
        if lo < 0 or hi > 1:
            raise DataError(
                f"{what}: float pixel values span {lo:.4g}..{hi:.4g}, outside [0, 1]; divide by 255 (or "
                "rescale) to [0, 1], or save uint8 0-255"
            )
        return "binary" if np.all((images == 0) | (images == 1)) else "float"
    raise DataError(f"{what}: images have dtype {images.dtype}; use uint8 0-255 or floats in [0, 1]")


def to_uint8(images: np.ndarray, kind: str, binary: bool) -> Tensor:
    if kind == "float" or (kind == "binary" and images.dtype.kind == "f"):
        scale = 1 if binary else 255
        images = np.rint(images * scale)
    elif kind == "binary" and not binary:  # 0/1 images next to 0-255 ones in another split
        images = images.astype(np.uint8) * 255
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))


def names_of(value: Any, count: int, key: str, what: str) -> tuple[str, ...]:
    names = tuple(str(v) for v in (value if isinstance(value, list | tuple) else as_numpy(value).tolist()))
    if len(names) != count:
        raise DataError(f"{what}: {len(names)} {key} for {count} columns; give one name per column")
    return names


@opener("arrays")
def open_arrays(
    root: Path,
    download: bool,
    path: str | None = None,
    val_size: float = 0.1,
    test_size: float = 0.1,
    split_seed: int = 0,
    layout: str = "auto",
) -> ArraysSource:
    """Read the file, detect layout and value range, check labels and factors, fix the splits."""
    if path is None:
        raise ConfigError("dataset=arrays needs dataset.path=<file.npz | file.npy | file.pt>")
    file = Path(path).expanduser()
    what = f"file {file}"
    if not file.is_file():
        raise DataError(f"dataset.path={path} is not a file; point dataset.path at a .npz, .npy or .pt file")
    data = read_file(file)
    groups = group_splits(data, file)
    images = {s: to_nchw(as_numpy(g["images"]), layout, f"{what} ({s})") for s, g in groups.items()}
    shapes = {tuple(x.shape[1:]) for x in images.values()}
    if len(shapes) > 1:
        raise DataError(f"{what}: splits have different image shapes {sorted(shapes)}; give them one shape")
    kinds = {s: value_kind(x, f"{what} ({s})") for s, x in images.items()}
    binary = all(k == "binary" for k in kinds.values())
    tensors = {s: to_uint8(x, kinds[s], binary) for s, x in images.items()}
    labels: dict[str, Tensor | None] = {}
    factors: dict[str, Tensor | None] = {}
    num_classes = None
    for s, g in groups.items():
        n = len(tensors[s])
        if "labels" in g:
            y, classes = check_labels(as_numpy(g["labels"]), n, f"{what} ({s})")
            labels[s] = torch.from_numpy(y)
            num_classes = max(num_classes or 0, classes)
        if "factors" in g:
            factors[s] = torch.from_numpy(check_factors(as_numpy(g["factors"]), n, f"{what} ({s})"))
    if len({s in labels for s in groups}) > 1 or len({s in factors for s in groups}) > 1:
        raise DataError(f"{what}: some splits have labels or factors and others do not; give all or none")
    if num_classes is not None and len({y.dim() for y in labels.values() if y is not None}) > 1:
        raise DataError(f"{what}: splits mix class indices and attribute rows; use one kind of label")

    missing = ["val", "test"] if "all" in groups else [s for s in ("val", "test") if s not in groups]
    if missing:
        base = "all" if "all" in groups else "train"
        index = seeded_split(
            len(tensors[base]),
            val_size if "val" in missing else None,
            test_size if "test" in missing else None,
            split_seed,
            what,
        )
        x, y, f = tensors[base], labels.get(base), factors.get(base)
        for s in ["train", *missing]:
            take = torch.from_numpy(index[s])
            tensors[s] = x[take]
            labels[s] = None if y is None else y[take]
            factors[s] = None if f is None else f[take]
        tensors.pop("all", None)
    factor_names = None
    if factors.get("train") is not None:
        k = factors["train"].shape[1]  # type: ignore[union-attr]
        given = data.get("factor_names")
        factor_names = (
            names_of(given, k, "factor_names", what)
            if given is not None
            else tuple(f"factor{i}" for i in range(k))
        )
    class_names = None
    if data.get("class_names") is not None and num_classes is not None:
        class_names = names_of(data["class_names"], num_classes, "class_names", what)
    note = {
        "binary": "binary 0/1",
        "uint8": "uint8 0-255",
        "float": "float 0-1 stored as 8-bit (round(x * 255))",
    }["binary" if binary else "float" if "float" in kinds.values() else "uint8"]
    return ArraysSource(
        name="arrays",
        what=what,
        shape=tuple(tensors["train"].shape[1:]),  # type: ignore[arg-type]
        levels=2 if binary else 256,
        counts={s: len(tensors[s]) for s in SPLITS},
        value_note=note,
        num_classes=num_classes,
        class_names=class_names,
        factor_names=factor_names,
        labels={s: labels.get(s) for s in SPLITS},
        factors={s: factors.get(s) for s in SPLITS},
        images={s: tensors[s] for s in SPLITS},
    )
