"""Image files to uint8 arrays with Pillow: headers first (cheap), then decoding, crop and resize.

Decoding many small files is dominated by per-file Python work, so threads do not help (measured:
two threads took twice as long as one, see ``python -m benchmarks.images``); worker processes
(a DataLoader's, which hand batches back through shared memory) do.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from vaezoo.errors import ConfigError, DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
GREY_MODES = ("1", "L", "LA")
HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def size_pair(size: int | Sequence[int] | None, key: str) -> tuple[int, int] | None:
    """An int n (n x n) or [height, width] from the config, checked."""
    if size is None:
        return None
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or not all(isinstance(v, int) and v > 0 for v in pair):
        raise ConfigError(f"dataset.{key}={size!r} must be a positive int or [height, width]")
    return pair  # type: ignore[return-value]


@dataclass(frozen=True)
class Decode:
    """How every image becomes a uint8 array: colour mode, then centre crop, then resize.

    ``crop`` (h, w) cuts the centre of each image first (as CelebA's 140x140 face crop does);
    ``size`` (h, w) then scales it to cover that size keeping the aspect ratio and cuts the centre,
    so nothing is stretched. ``channels`` is 1 (grey) or 3 (RGB).
    """

    channels: int
    crop: tuple[int, int] | None = None
    size: tuple[int, int] | None = None

    def __call__(self, path: Path) -> np.ndarray:
        """The image at ``path`` as uint8 [C, H, W]."""
        with Image.open(path) as img:
            img = img.convert("L" if self.channels == 1 else "RGB")
            if self.crop is not None:
                img = centre_crop(img, self.crop)
            if self.size is not None:
                img = cover_resize(img, self.size)
            array = np.array(img, dtype=np.uint8)  # a writable copy (torch warns on read-only arrays)
        return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def centre_crop(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    h, w = size
    top, left = round((img.height - h) / 2.0), round((img.width - w) / 2.0)  # as torchvision's CenterCrop
    return img.crop((left, top, left + w, top + h))


def cover_resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale (bilinear, as torchvision's Resize) to cover ``size``, then cut the centre."""
    h, w = size
    if (img.height, img.width) == (h, w):
        return img
    scale = max(h / img.height, w / img.width)
    new = (max(w, round(img.width * scale)), max(h, round(img.height * scale)))
    return centre_crop(img.resize(new, Image.Resampling.BILINEAR), size)


def read_header(path: Path) -> tuple[tuple[int, int], str] | None:
    """(height, width) and Pillow mode of an image file, or None if it cannot be read as an image."""
    try:
        with Image.open(path) as img:
            return (img.height, img.width), img.mode
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def read_headers(paths: Sequence[Path], what: str) -> list[tuple[tuple[int, int], str]]:
    """Headers of every file (about 40 us each); refuses, naming them, files that are not readable images."""
    headers = [read_header(p) for p in paths]
    bad = [p for p, h in zip(paths, headers, strict=True) if h is None]
    if bad:
        named = ", ".join(str(p) for p in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise DataError(f"{what}: cannot read {len(bad)} image file(s): {named}; remove or re-save them")
    deep = [p for p, h in zip(paths, headers, strict=True) if h[1] in HIGH_DEPTH_MODES]  # type: ignore[index]
    if deep:
        raise DataError(
            f"{what}: {deep[0]} ({len(deep)} file(s)) has 16-bit or float pixels; vaezoo reads 8-bit images, "
            "save them as 8-bit PNG/JPEG or pass them as a float array with dataset=arrays"
        )
    return headers  # type: ignore[return-value]


def plan_decode(
    headers: Sequence[tuple[tuple[int, int], str]],
    paths: Sequence[Path],
    channels: int | str,
    crop: tuple[int, int] | None,
    size: tuple[int, int] | None,
    what: str,
) -> tuple[Decode, tuple[int, int, int]]:
    """The decoding every image gets and the resulting [C, H, W]; refuses sizes that cannot work."""
    if channels == "auto":
        channels = 1 if all(mode in GREY_MODES for _, mode in headers) else 3
    if channels not in (1, 3):
        raise ConfigError(f"dataset.channels={channels!r} must be auto, 1 (grey) or 3 (RGB)")
    sizes: dict[tuple[int, int], int] = {}
    for hw, _ in headers:
        sizes[hw] = sizes.get(hw, 0) + 1
    if crop is not None:
        small = [
            (p, hw) for p, (hw, _) in zip(paths, headers, strict=True) if hw[0] < crop[0] or hw[1] < crop[1]
        ]
        if small:
            p, (h, w) = small[0]
            raise DataError(
                f"{what}: {p} is {h}x{w}, smaller than dataset.crop={list(crop)} "
                f"({len(small)} such file(s)); "
                "lower dataset.crop or set it to null"
            )
    if size is None and crop is None and len(sizes) > 1:
        common = sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
        listed = ", ".join(f"{h}x{w}: {n}" for (h, w), n in common)
        raise DataError(
            f"{what}: images have {len(sizes)} different sizes ({listed}, ...); set dataset.image_size=N "
            "(resize and centre-crop to NxN) or dataset.crop"
        )
    hw = size or crop or next(iter(sizes))
    return Decode(int(channels), crop, size), (int(channels), hw[0], hw[1])


def decode_all(
    paths: Sequence[Path], decode: Decode, shape: tuple[int, int, int], workers: int, min_files: int = 2000
) -> Tensor:
    """Every file decoded into one uint8 tensor [N, C, H, W], by ``workers`` DataLoader processes
    (in this process when ``workers`` <= 1 or for fewer than ``min_files`` files: starting workers
    costs about a second)."""
    out = torch.empty((len(paths), *shape), dtype=torch.uint8)
    if workers <= 1 or len(paths) < min_files:
        for i, path in enumerate(paths):
            out[i] = torch.from_numpy(decode(path))
        return out
    loader = torch.utils.data.DataLoader(
        FileImages(paths, None, decode), batch_size=256, num_workers=workers, collate_fn=stack_images
    )
    start = 0
    for batch in loader:
        out[start : start + len(batch)] = batch
        start += len(batch)
    return out


def stack_images(items: list[tuple[Tensor, Tensor | None]]) -> Tensor:
    return torch.stack([x for x, _ in items])


class FileImages(Dataset):
    """Items (uint8 image [C, H, W], label or None) decoded from files on access (in DataLoader workers)."""

    def __init__(self, paths: Sequence[Path], labels: Tensor | None, decode: Decode) -> None:
        self.paths, self.labels, self.decode = list(paths), labels, decode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor | None]:
        x = torch.from_numpy(self.decode(self.paths[i]))
        return x, None if self.labels is None else self.labels[i]
