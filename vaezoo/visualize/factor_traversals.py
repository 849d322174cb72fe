"""On data with known factors of variation (dSprites-like), traverse for each factor the latent dimension
that is most informative about it (mutual information between the discretised posterior mean and the
factor's values), so a row shows whether that factor has its own unit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vaezoo.visualize import Scene, picture
from vaezoo.visualize.figures import labelled_grid, number
from vaezoo.visualize.traversals import sweep_values, traverse

BINS = 20


def discretise(values: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Equal-frequency bins of one column (unchanged when it already has few distinct values)."""
    if len(np.unique(values)) <= bins:
        return np.unique(values, return_inverse=True)[1]
    edges = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.digitize(values, edges)


def mutual_information(codes: Tensor, factors: Tensor) -> np.ndarray:
    """MI in nats between every latent dimension and every factor: [D, F]."""
    from sklearn.metrics import mutual_info_score

    c = codes.double().cpu().numpy()
    f = factors.double().cpu().numpy().reshape(len(c), -1)
    binned_c = [discretise(c[:, d]) for d in range(c.shape[1])]
    binned_f = [discretise(f[:, k]) for k in range(f.shape[1])]
    return np.array([[mutual_info_score(bf, bc) for bf in binned_f] for bc in binned_c])


def most_informative(codes: Tensor, factors: Tensor) -> list[tuple[int, float]]:
    """For each factor, the (dimension, MI) that carries most information about it."""
    mi = mutual_information(codes, factors)
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
