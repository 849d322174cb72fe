"""Latent traversals: one latent dimension at a time swept through its range, from a few test images.

Rows are dimensions sorted by their KL (the most used first; inactive units marked); columns sweep the
prior's quantiles for a N(0, 1) prior, else the empirical quantiles of the posterior means.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from vaezoo.visualize import Scene, picture
from vaezoo.visualize.figures import labelled_grid, number

QUANTILES = (0.05, 0.95)
SEED_IMAGES = 2


def sweep_values(scene: Scene, steps: int) -> Tensor:
    """Values [D, steps] each dimension is swept through."""
    q = torch.linspace(*QUANTILES, steps, device=scene.codes.device)
    if scene.model.standard_normal_prior:
        values = torch.distributions.Normal(0.0, 1.0).icdf(q)
        return values.expand(scene.codes.shape[1], steps)
    return torch.quantile(scene.codes.float(), q, dim=0).T


def traverse(scene: Scene, z0: Tensor, dims: list[int], values: Tensor, y: Tensor | None) -> Tensor:
    """Decoded images [len(dims), B * V, C, H, W]: each start latent of z0 [B, D] with dimension d set to
    each of values[d] in turn (B blocks of V columns)."""
    b, v = z0.shape[0], values.shape[1]
    rows = []
    for d in dims:
        z = z0.repeat_interleave(v, dim=0).clone()
        z[:, d] = values[d].repeat(b)
        rows.append(scene.decode(z, None if y is None else y.repeat_interleave(v, dim=0)))
    return torch.stack(rows)


def dims_by_kl(scene: Scene, limit: int) -> list[int]:
    """Dimensions by decreasing KL, at most ``limit``; the least used one is kept last when cut, so an
    inactive unit stays visible for comparison."""
    order = torch.argsort(scene.kl_per_dim, descending=True).tolist()
    if len(order) <= limit:
        return order
    return [*order[: limit - 1], order[-1]]


def dim_label(scene: Scene, d: int) -> str:
    mark = "" if scene.active[d] else " inactive"
    return f"z{d} KL {scene.kl_per_dim[d]:.2f}{mark}"


@picture(
    "traversals",
    "every model (prior quantiles for N(0, 1) priors, else the codes' quantiles)",
    title="Latent traversals: one unit at a time, units by KL",
    uses="posterior means of a few test images and the KL per unit",
)
def draw(scene: Scene, path: Path) -> Path:
    steps = scene.traversal_steps
    values = sweep_values(scene, steps)
    dims = dims_by_kl(scene, scene.max_traversal_dims)
    n = min(SEED_IMAGES, len(scene.x))
    y = None if scene.y is None else scene.y[:n]
    images = traverse(scene, scene.codes[:n], dims, values, y)
    cols = [number(float(v)) for v in values[dims[0]]] * n if scene.model.standard_normal_prior else None
    what = "N(0,1) quantiles" if scene.model.standard_normal_prior else "quantiles of the posterior means"
    return labelled_grid(
        images,
        path,
        title=f"Latent traversals from {n} test images ({what} {QUANTILES[0]:g}-{QUANTILES[1]:g})",
        row_labels=[dim_label(scene, d) for d in dims],
        col_labels=cols,
    )
