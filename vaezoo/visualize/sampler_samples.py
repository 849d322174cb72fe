"""Samples from the prior and from each fitted latent sampler, one row each, side by side: where the
prior's draws land in the aggregate posterior's holes (malformed digits), a sampler fitted to the codes
(``python -m vaezoo.sampler``) draws where the codes are."""

from __future__ import annotations

from pathlib import Path

import torch

from vaezoo.samplers.through import SampledThrough
from vaezoo.visualize import Scene, picture
from vaezoo.visualize.figures import labelled_grid

COLUMNS = 12


def skip(scene: Scene) -> str | None:
    if not scene.samplers:
        return "no fitted latent sampler in the job folder (python -m vaezoo.sampler run=<job> sampler=gmm)"
    return None if scene.model.can_sample else scene.model.sample_unavailable_reason


@picture(
    "sampler_samples",
    "jobs with a fitted latent sampler (python -m vaezoo.sampler)",
    title="Samples from the prior and from each fitted latent sampler",
    uses="the prior's draws and each sampler's draws, decoded by the same decoder",
    skip=skip,
)
def draw(scene: Scene, path: Path) -> Path:
    model = scene.model
    labels = None
    if model.requires_labels:
        classes = int(model.data_info.num_classes or 1)
        labels = torch.arange(COLUMNS, device=scene.x.device) % classes
    rows = [model.sample(COLUMNS, labels).float()]
    for sampler in scene.samplers.values():
        rows.append(SampledThrough(model, sampler).sample(COLUMNS, labels).float())
    return labelled_grid(
        torch.stack([r.cpu() for r in rows]),
        path,
        title="One row per sampler, the same decoder"
        + ("; column i asks for class i mod C" if labels is not None else ""),
        row_labels=["prior", *scene.samplers],
        col_labels=[str(int(c)) for c in labels] if labels is not None else None,
    )
