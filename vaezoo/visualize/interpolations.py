"""Interpolations between pairs of test images' posterior means: linear (lerp) and spherical (slerp).

In high dimensions a N(0, I) sample lies near the sphere of radius sqrt(D); lerp cuts through the
inside, where the prior has almost no samples, while slerp keeps the norm and stays typical.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from vaezoo.visualize import Scene, picture
from vaezoo.visualize.figures import labelled_grid, number

PAIRS = 3
STEPS = 8


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Rows of a [B, D] to b along straight lines: [B, T, D] for t [T]."""
    t = t.view(1, -1, 1)
    return (1 - t) * a.unsqueeze(1) + t * b.unsqueeze(1)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of rows of a [B, D] to b: [B, T, D]; lerp where a and b are parallel."""
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1).clamp(-1 + 1e-7, 1 - 1e-7)
    omega = torch.arccos(cos).view(-1, 1, 1)
    t = t.view(1, -1, 1)
    sin = torch.sin(omega)
    wa, wb = torch.sin((1 - t) * omega) / sin, torch.sin(t * omega) / sin
    out = wa * a.unsqueeze(1) + wb * b.unsqueeze(1)
    return torch.where(sin.abs() < 1e-6, lerp(a, b, t.flatten()), out)


def pair_indices(scene: Scene, pairs: int) -> list[tuple[int, int]]:
    """Pairs of test examples, of different classes where labels exist."""
    n = len(scene.x)
    if not scene.labels_are_classes:
        return [(2 * i, 2 * i + 1) for i in range(min(pairs, n // 2))]
    out, used = [], set()
    y = scene.y.tolist()
    for i in range(n):
        j = next((j for j in range(i + 1, n) if y[j] != y[i] and j not in used), None)
        if i in used or j is None:
            continue
        out.append((i, j))
        used.update((i, j))
        if len(out) == pairs:
            break
    return out


@picture(
    "interpolations",
    "every model",
    title="Interpolations between test images, linear and spherical",
    uses="posterior means of pairs of test images",
    skip=lambda s: (
        "fewer than 2 test examples"
        if len(s.x) < 2
        else ("every test example is of one class" if not pair_indices(s, 1) else None)
    ),
)
def draw(scene: Scene, path: Path) -> Path:
    pairs = pair_indices(scene, PAIRS)
    a = scene.codes[[i for i, _ in pairs]]
    b = scene.codes[[j for _, j in pairs]]
    t = torch.linspace(0, 1, STEPS, device=a.device)
    rows, labels = [], []
    for p, (i, j) in enumerate(pairs):
        y = None if scene.y is None else scene.y[i].expand(STEPS, *scene.y.shape[1:])  # first image's label
        for kind, path_fn in (("lerp", lerp), ("slerp", slerp)):
            z = path_fn(a[p : p + 1], b[p : p + 1], t)[0]
            rows.append(scene.decode(z, y))
            labels.append(f"{i}->{j} {kind}")
    return labelled_grid(
        torch.stack(rows),
        path,
        title="Interpolations between test images: linear (lerp) and spherical (slerp)",
        row_labels=labels,
        col_labels=[f"t={number(float(v))}" for v in t],
    )
