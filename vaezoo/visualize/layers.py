"""Samples of a hierarchical model that vary one latent layer at a time: row l redraws only layer l
from the prior and keeps every other layer of one base sample, showing what each layer controls.

The lower layers' priors are conditional; the redrawn part comes from another ancestral sample, so it
is a typical value of that layer (not one conditioned on the base sample's upper layers).
"""

from __future__ import annotations

from pathlib import Path

import torch

from vaezoo.visualize import Scene, picture
from vaezoo.visualize.figures import labelled_grid

COLUMNS = 10


def skip(scene: Scene) -> str | None:
    layers = scene.model.latent_layers()
    if not layers or len(layers) < 2:
        return "the model has one latent layer"
    return None if scene.model.can_sample else scene.model.sample_unavailable_reason


@picture(
    "layers",
    "hierarchical models (several latent layers)",
    title="Samples varying one latent layer at a time",
    uses="prior draws, one layer redrawn per row",
    skip=skip,
)
def draw(scene: Scene, path: Path) -> Path:
    layers = scene.model.latent_layers()
    base = scene.model.prior_latents(1).expand(COLUMNS, -1)
    fresh = scene.model.prior_latents(COLUMNS)
    rows, start = [scene.decode(base.clone())], 0
    for _, size in layers:
        z = base.clone()
        z[:, start : start + size] = fresh[:, start : start + size]
        rows.append(scene.decode(z))
        start += size
    return labelled_grid(
        torch.stack(rows),
        path,
        title="One base sample; each row redraws one layer (z1 nearest the image)",
        row_labels=["base sample", *(f"vary {name} ({size})" for name, size in layers)],
    )
