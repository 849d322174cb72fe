"""A conditional model's samples, one row per class: the same prior noise in every column (the same
latent under N(0, I), the same quantiles of each class's prior under p(z|y)), so a column keeps its
style while the rows change the class."""

from __future__ import annotations

from pathlib import Path

import torch

from vaezoo.visualize import Scene, picture
from vaezoo.visualize.figures import labelled_grid

COLUMNS = 10
MAX_CLASSES = 20
NOISE_SEED = 0


def skip(scene: Scene) -> str | None:
    if not scene.model.requires_labels:
        return "the model is not conditional"
    if not scene.labels_are_classes:
        return "the labels are not class indices"
    return None if scene.model.can_sample else scene.model.sample_unavailable_reason


@picture(
    "class_rows",
    "conditional models (cvae) on class-labelled data",
    title="Samples by class, one row per class",
    uses="the same prior draws decoded for every class label",
    skip=skip,
)
def draw(scene: Scene, path: Path) -> Path:
    num_classes = scene.model.data_info.num_classes or int(scene.y.max()) + 1
    classes = torch.arange(min(num_classes, MAX_CLASSES), device=scene.x.device)
    rows = []
    for c in classes:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(NOISE_SEED)  # the same standard normal noise for every row
            z = scene.model.prior_latents(COLUMNS, c.expand(COLUMNS))
        rows.append(scene.decode(z, c.expand(COLUMNS)))
    return labelled_grid(
        torch.stack(rows),
        path,
        title="One row per class; each column shares its prior noise",
        row_labels=[f"class {int(c)}" for c in classes],
        col_labels=[f"draw {i + 1}" for i in range(COLUMNS)],  # prior draws, not latent units
    )
