"""Per-example ELBO and KL histograms, test set against an out-of-distribution set, with their AUROC
(:func:`vaezoo.evaluation.ood.ood_auroc`, the one the ``ood_auroc`` metric reports).

The out-of-distribution set is made from the same test images (``pictures.ood``: rotated or inverted), so
it needs no second dataset. The AUROC scores -ELBO (or KL) as an anomaly score: 1 separates perfectly,
0.5 is chance, below 0.5 means the model finds the outliers *more* likely (a known VAE failure).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vaezoo.evaluation.ood import ood_auroc
from vaezoo.visualize import OOD_TRANSFORMS, Scene, picture
from vaezoo.visualize.figures import figure, save


def per_example(scene: Scene, x: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-example ELBO and KL (nats) of images x."""

    def terms(xb: Tensor, yb: Tensor | None) -> Tensor:
        t = scene.model.elbo_terms(xb, yb)
        return torch_stack(t.elbo, t.kl_total)

    out = scene.batched(terms, x, scene.y).double().cpu().numpy()
    return out[:, 0], out[:, 1]


def torch_stack(*columns: Tensor) -> Tensor:
    return torch.stack([c.float() for c in columns], dim=1)


@picture(
    "anomaly_histograms",
    "every model, with pictures.ood set",
    title="Anomaly scores: test images against rotated or inverted ones",
    uses="per-example ELBO and KL of the test images and of their pictures.ood copies",
    skip=lambda s: None if s.ood else "pictures.ood is null",
)
def draw(scene: Scene, path: Path) -> Path:
    ood_x = OOD_TRANSFORMS[scene.ood](scene.x)
    elbo_in, kl_in = per_example(scene, scene.x)
    elbo_out, kl_out = per_example(scene, ood_x)
    fig = figure(9.0, 3.4)
    for i, (name, a, b, score_sign) in enumerate(
        (("ELBO", elbo_in, elbo_out, -1.0), ("KL", kl_in, kl_out, 1.0))
    ):
        ax = fig.add_subplot(1, 2, i + 1)
        bins = np.histogram_bin_edges(np.r_[a, b], bins=40)
        ax.hist(a, bins=bins, alpha=0.6, label="test")
        ax.hist(b, bins=bins, alpha=0.6, label=f"{scene.ood} test")
        ax.set_xlabel(f"per-example {name} (nats)")
        area = ood_auroc(torch.from_numpy(score_sign * a), torch.from_numpy(score_sign * b))
        ax.set_title(f"{name}: AUROC {area:.3f}", fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"Test images against {scene.ood} test images ({len(scene.x)} each)", fontsize=10)
    return save(fig, path)
