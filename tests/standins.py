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
