"""On data with known factors of variation (dSprites-like), traverse for each factor the latent dimension
that is most informative about it (mutual information between the discretised posterior mean and the
factor's values, by :mod:`vaezoo.evaluation.information`, as MIG measures it), so a row shows whether
that factor has its own unit."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from vaezoo.evaluation.information import mutual_information
from vaezoo.visualize import Scene, picture
from vaezoo.visualize.figures import labelled_grid, number
from vaezoo.visualize.traversals import sweep_values, traverse


def most_informative(codes: Tensor, factors: Tensor) -> list[tuple[int, float]]:
    """For each factor, the (dimension, MI) that carries most information about it."""
    mi = mutual_information(codes.double().cpu().numpy(), factors.double().cpu().numpy())
    return [(int(mi[:, k].argmax()), float(mi[:, k].max())) for k in range(mi.shape[1])]


@picture(
    "factor_traversals",
    "data with known factors (a `factors` attribute on the data module)",
    title="Factor traversals: per factor, its most informative latent unit swept",
    uses="posterior means of the test images and their ground-truth factors",
    skip=lambda s: None if s.factors is not None else "the data has no factors of variation",
)
def draw(scene: Scene, path: Path) -> Path:
    best = most_informative(scene.codes, scene.factors.values[: len(scene.codes)])
    values = sweep_values(scene, scene.traversal_steps)
    y = None if scene.y is None else scene.y[:1]
    images = torch.cat([traverse(scene, scene.codes[:1], [d], values, y) for d, _ in best])
    cols = [number(float(v)) for v in values[best[0][0]]] if scene.model.standard_normal_prior else None
    return labelled_grid(
        images,
        path,
        title="For each factor, its most informative latent dimension traversed",
        row_labels=[
            f"{name}: z{d} MI {mi:.2f}" for name, (d, mi) in zip(scene.factors.names, best, strict=True)
        ],
        col_labels=cols,
    )
