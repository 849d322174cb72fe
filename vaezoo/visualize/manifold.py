"""The 2-D manifold: the decoder over a grid of the prior's quantiles, for 2-unit latent spaces."""

from __future__ import annotations

from pathlib import Path

import torch

from vaezoo.visualize import Scene, picture
from vaezoo.visualize.figures import labelled_grid, number
from vaezoo.visualize.traversals import sweep_values

GRID = 15


def skip(scene: Scene) -> str | None:
    d = scene.codes.shape[1]
    return None if d == 2 else f"the latent space has {d} units, not 2"


@picture(
    "manifold",
    "2-unit latent spaces",
    title="The decoder over a grid of the 2-D latent space",
    uses="a grid of the prior's quantiles",
    skip=skip,
)
def draw(scene: Scene, path: Path) -> Path:
    values = sweep_values(scene, GRID)  # [2, GRID]
    z1 = values[0].repeat(GRID)  # columns
    z2 = values[1].flip(0).repeat_interleave(GRID)  # rows, largest at the top
    y = None
    if scene.y is not None:
        y = scene.y[:1].expand(GRID * GRID, *scene.y.shape[1:])
    images = scene.decode(torch.stack([z1, z2], dim=1), y)
    images = images.reshape(GRID, GRID, *images.shape[1:])
    return labelled_grid(
        images,
        path,
        title="Decoder over the 2-D latent grid"
        + (" (labels of the first test image)" if y is not None else ""),
        row_labels=[f"z1={number(float(v))}" for v in values[1].flip(0)],
        col_labels=[number(float(v)) for v in values[0]],
        col_title="z0",
    )
