"""CelebA from its official files: ``celeba/img_align_celeba/*.jpg`` (178x218), ``list_eval_partition.txt``
(train / valid / test) and ``list_attr_celeba.txt`` (40 attributes, -1/1, used as 0/1 labels).

Read directly (torchvision is used only to download), so only these three are needed. Each image is
centre-cropped to 140x140 and resized to ``image_size`` (64), decoded once into memory or by
DataLoader workers every epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vaezoo.data.decoding import default_workers, plan_decode, read_headers, size_pair
from vaezoo.data.image_folder import FilesSource
from vaezoo.data.source import SPLITS, opener
from vaezoo.data.sources import SOURCES, Splits, _missing, _torchvision
from vaezoo.errors import DataError

FOLDER = "celeba"
IMAGES = "img_align_celeba"
PARTITION = "list_eval_partition.txt"
ATTRIBUTES = "list_attr_celeba.txt"
PARTITION_CODES = {"0": "train", "1": "val", "2": "test"}


def _rows(path: Path, skip: int) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()[skip:] if line.strip()]


@opener("celeba")
def open_celeba(
    root: Path,
    download: bool,
    image_size: int | list[int] = 64,
    crop: int | list[int] | None = 140,
    decode_workers: int | None = None,
) -> FilesSource:
    """List the official split and attributes and read the JPEG headers; decodes nothing yet."""
    folder = root / FOLDER
    needed = [f"{IMAGES}/", PARTITION, ATTRIBUTES]
    if not (
        (folder / IMAGES).is_dir() and (folder / PARTITION).is_file() and (folder / ATTRIBUTES).is_file()
    ):
        if not download:
            raise _missing("celeba", folder, needed, None)
        _torchvision("celeba", "CelebA", root, download, needed, split="all")
    header = (folder / ATTRIBUTES).read_text().splitlines()[1].split()
    attrs = {row[0]: row[1:] for row in _rows(folder / ATTRIBUTES, 2)}
    files: dict[str, list[Path]] = {s: [] for s in SPLITS}
    labels: dict[str, list[list[int]]] = {s: [] for s in SPLITS}
    for name, code in _rows(folder / PARTITION, 0):
        if code not in PARTITION_CODES or name not in attrs or len(attrs[name]) != len(header):
            raise DataError(
                f"{folder / PARTITION} / {ATTRIBUTES}: no valid split or {len(header)} attributes "
                f"for {name}; "
                "re-download them"
            )
        split = PARTITION_CODES[code]
        files[split].append(folder / IMAGES / name)
        labels[split].append([(int(v) + 1) // 2 for v in attrs[name]])
    for split in SPLITS:
        if not files[split]:
            raise DataError(f"{folder / PARTITION} lists no {split} images; re-download it")
    missing = [p for s in SPLITS for p in files[s] if not p.is_file()]
    if missing:
        raise DataError(
            f"celeba: {len(missing)} listed image(s) missing, e.g. {missing[0]}; re-extract {IMAGES}"
        )
    workers = default_workers() if decode_workers is None else decode_workers
    ordered = [p for s in SPLITS for p in files[s]]
    headers = read_headers(ordered, "celeba")
    decode, shape = plan_decode(
        headers, ordered, 3, size_pair(crop, "crop"), size_pair(image_size, "image_size"), "celeba"
    )
    return FilesSource(
        name="celeba",
        what=str(folder),
        shape=shape,
        levels=256,
        counts={s: len(files[s]) for s in SPLITS},
        value_note="uint8 0-255 (JPEG)",
        num_classes=len(header),
        class_names=tuple(header),
        labels={s: torch.from_numpy(np.asarray(labels[s], dtype=np.int64)) for s in SPLITS},
        paths=files,
        decode=decode,
        workers=workers,
    )


def load_celeba(root: Path, download: bool) -> Splits:
    """All of CelebA decoded at 64x64 (about 2.4 GiB for the 163k training images)."""
    return open_celeba(root, download).load()


SOURCES["celeba"] = load_celeba
