"""``dataset=image_folder dataset.path=<folder>``: every image under a folder, labelled by sub-folder.

Conventions (torchvision's ImageFolder): sub-folders are classes, numbered in sorted name order, and
hold their images at any depth (symbolic links are followed, but each real file and folder is listed
once: a link back to a folder already listed, or to a file already listed, is skipped and reported in
one warning line); a folder without sub-folders is unlabelled. A folder whose only
sub-folders are ``train/``, ``val/``, ``test/`` is split by them (each laid out as above); a missing
``val/`` or ``test/`` is drawn from ``train/`` with ``dataset.split_seed``. Otherwise the split is
seeded: ``test_size`` then ``val_size`` images (fractions or counts) are set aside.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vaezoo.data.decoding import (
    IMAGE_EXTENSIONS,
    Decode,
    FileImages,
    decode_all,
    default_workers,
    plan_decode,
    read_headers,
    size_pair,
)
from vaezoo.data.source import SPLITS, ImageSource, opener, seeded_split
from vaezoo.data.sources import Splits
from vaezoo.errors import ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass
class FilesSource(ImageSource):
    """Images in files: per-split paths, decoded all at once (thread pool) or one by one by workers."""

    paths: dict[str, list[Path]] = field(default_factory=dict)
    decode: Decode = field(default_factory=lambda: Decode(3))
    workers: int = 1

    def load(self) -> Splits:
        images = {s: decode_all(self.paths[s], self.decode, self.shape, self.workers) for s in SPLITS}
        return self.splits_from(images)

    def datasets(self) -> dict[str, Dataset]:
        return {s: FileImages(self.paths[s], self.labels.get(s), self.decode) for s in SPLITS}


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


class FolderListing:
    """One listing of an image folder in which every file and every folder counts once, by real path.

    Symbolic links are followed (as torchvision's ImageFolder does), so a link can lead to a folder
    already listed (a loop: a sub-folder linking to its parent) or to a file already listed (a
    duplicate). Such folders are not entered and such files are not listed again; ``skipped`` counts
    the image files passed over, ``example`` names the first link that led to them. Reserved folders
    (the top folder, the split and class folders) are entered only as themselves, never through a
    link from another one, so a link cannot move images into another class or split.
    """

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.folders: set[str] = set()
        self.reserved: set[str] = set()
        self.skipped = 0
        self.example: str | None = None

    def _repeat(self, path: str, count: int) -> None:
        self.skipped += count
        if self.example is None:
            self.example = f"{path} -> {os.path.realpath(path)}"

    def reserve(self, *folders: Path) -> None:
        self.reserved.update(os.path.realpath(f) for f in folders)

    def keep(self, paths: list[Path], real_folders: dict[str, str] | None = None) -> list[Path]:
        """``paths`` in their order, less those whose real file is already listed.

        ``real_folders`` maps a listed folder to its real path, so that a file that is not a link is
        resolved without asking the file system again (a link costs a realpath).
        """
        kept = []
        for path in paths:
            folder = (real_folders or {}).get(str(path.parent))
            real = (
                os.path.join(folder, path.name)
                if folder and not path.is_symlink()
                else os.path.realpath(path)
            )
            if real in self.files:
                self._repeat(str(path), 1)
            else:
                self.files.add(real)
                kept.append(path)
        return kept

    def images_under(self, folder: Path) -> list[Path]:
        """Image files at any depth, in ImageFolder's order (sorted walk, sorted names), hidden skipped."""
        walked = []
        for root, dirs, files in os.walk(folder, followlinks=True):
            real = os.path.realpath(root)
            if real in self.folders or (real in self.reserved and root != str(folder)):
                # reached again through a link: its images are listed already, or will be on their own
                dirs[:] = []
                self._repeat(root, sum(_is_image(f) for _, _, fs in os.walk(root) for f in fs))
                continue
            self.folders.add(real)
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            walked.append((root, real, files))
        found = [Path(root) / f for root, _, files in sorted(walked) for f in sorted(files) if _is_image(f)]
        return self.keep(found, {root: real for root, real, _ in walked})

    def report(self, folder: Path, unique: int) -> str | None:
        """The one line that says what was skipped, or None when nothing was."""
        if not self.skipped:
            return None
        return (
            f"image_folder: {folder}: skipped {self.skipped} image file(s) reached a second time through a "
            f"symbolic link (first: {self.example}); using the {unique} unique image(s), each once; remove "
            "the link to silence this"
        )


def list_labelled(
    folder: Path, listing: FolderListing
) -> tuple[list[Path], list[str] | None, list[int] | None]:
    """Paths under ``folder``, with class names and labels when it has class sub-folders."""
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    loose = [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    dirs = [p for p in entries if p.is_dir()]
    listing.reserve(folder, *dirs)
    if not dirs:
        return listing.keep(loose), None, None
    if loose:
        raise DataError(
            f"{folder} has images both directly inside ({loose[0].name}, ...) and in sub-folders; move them "
            "into class sub-folders, or the sub-folders' images up for unlabelled data"
        )
    paths: list[Path] = []
    labels: list[int] = []
    for label, d in enumerate(dirs):
        skipped_before = listing.skipped
        files = listing.images_under(d)
        if not files and listing.skipped > skipped_before:
            raise DataError(
                f"class folder {d} holds only images already listed under another folder (it is, or "
                f"links to, a copy: {listing.example}); remove the link or the class folder"
            )
        if not files:
            raise DataError(
                f"class folder {d} has no images ({', '.join(IMAGE_EXTENSIONS)}); remove it or add images"
            )
        paths += files
        labels += [label] * len(files)
    return paths, [d.name for d in dirs], labels


@opener("image_folder")
def open_image_folder(
    root: Path,
    download: bool,
    path: str | None = None,
    val_size: float = 0.1,
    test_size: float = 0.1,
    split_seed: int = 0,
    image_size: int | list[int] | None = None,
    crop: int | list[int] | None = None,
    channels: int | str = "auto",
    decode_workers: int | None = None,
) -> FilesSource:
    """List the folder, read every header, check sizes; decodes nothing yet."""
    if path is None:
        raise ConfigError("dataset=image_folder needs dataset.path=<folder of images>")
    folder = Path(path).expanduser()
    what = f"folder {folder}"
    if not folder.is_dir():
        raise DataError(f"dataset.path={path} is not a folder; point dataset.path at a folder of images")
    sub = {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")}
    explicit = "train" in sub and sub <= set(SPLITS)
    listed: dict[str, tuple[list[Path], list[str] | None, list[int] | None]] = {}
    listing = FolderListing()  # one across the splits: an image linked into two splits is listed once
    listing.reserve(folder, *(folder / s for s in SPLITS if explicit and (folder / s).is_dir()))
    for split in SPLITS if explicit else ("all",):
        if split == "all":
            listed[split] = list_labelled(folder, listing)
        elif (folder / split).is_dir():
            listed[split] = list_labelled(folder / split, listing)
    repeats = listing.report(folder, sum(len(paths) for paths, _, _ in listed.values()))
    if repeats:
        log.warning(repeats)
    first_paths, class_names, _ = listed["train" if explicit else "all"]
    if not first_paths:
        where = folder / "train" if explicit else folder
        raise DataError(
            f"no images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) under {where}; put images there "
            "(one sub-folder per class for labels)"
        )
    for split, (paths, names, _) in listed.items():
        if (names is None) != (class_names is None) or (names and not set(names) <= set(class_names or ())):
            raise DataError(
                f"{folder / split}/ has classes {names} but {folder / 'train'}/ has {class_names}; "
                "give every split the same class sub-folders (or none)"
            )
        if not paths:
            raise DataError(f"no images under {folder / split}; add images or remove the empty folder")

    def labels_of(entry) -> np.ndarray | None:
        _, names, labels = entry
        if names is None:
            return None
        remap = np.array([class_names.index(n) for n in names])  # type: ignore[union-attr]
        return remap[np.asarray(labels, dtype=np.int64)]

    if explicit:
        files = {s: listed[s][0] for s in listed}
        labels = {s: labels_of(listed[s]) for s in listed}
        missing = [s for s in ("val", "test") if s not in listed]
        if missing:
            n = len(files["train"])
            index = seeded_split(
                n,
                val_size if "val" in missing else None,
                test_size if "test" in missing else None,
                split_seed,
                f"{folder / 'train'}",
            )
            train_files, train_labels = files["train"], labels["train"]
            for s in ["train", *missing]:
                files[s] = [train_files[i] for i in index[s]]
                labels[s] = None if train_labels is None else train_labels[index[s]]
    else:
        all_files, all_labels = listed["all"][0], labels_of(listed["all"])
        index = seeded_split(len(all_files), val_size, test_size, split_seed, what)
        files = {s: [all_files[i] for i in index[s]] for s in SPLITS}
        labels = {s: None if all_labels is None else all_labels[index[s]] for s in SPLITS}

    workers = default_workers() if decode_workers is None else decode_workers
    ordered = [p for s in SPLITS for p in files[s]]
    headers = read_headers(ordered, what)
    decode, shape = plan_decode(
        headers, ordered, channels, size_pair(crop, "crop"), size_pair(image_size, "image_size"), what
    )
    modes = {mode for _, mode in headers}
    return FilesSource(
        name="image_folder",
        what=what,
        shape=shape,
        levels=256,
        counts={s: len(files[s]) for s in SPLITS},
        value_note=f"uint8 0-255 (files: {', '.join(sorted(modes))})",
        num_classes=None if class_names is None else len(class_names),
        class_names=None if class_names is None else tuple(class_names),
        labels={s: None if labels[s] is None else torch.from_numpy(labels[s]) for s in SPLITS},
        paths=files,
        decode=decode,
        workers=workers,
    )
