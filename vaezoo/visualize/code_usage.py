"""Code usage of a discrete-latent model (VQ-VAE): how often each codebook entry is used on the test
images, sorted, with the number of used codes and the perplexity (exp of the usage entropy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vaezoo.visualize import Scene, picture
from vaezoo.visualize.figures import figure, save


def skip(scene: Scene) -> str | None:
    return None if scene.model.code_indices(scene.x[:1]) is not None else "the latents are continuous"


def usage(indices: torch.Tensor, num_codes: int) -> np.ndarray:
    """Fraction of code positions that use each code [num_codes]."""
    counts = torch.bincount(indices.flatten().long().cpu(), minlength=num_codes).double()
    return (counts / counts.sum()).numpy()


def perplexity(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(np.exp(-(nz * np.log(nz)).sum()))


@picture(
    "code_usage",
    "discrete-latent models (vqvae)",
    title="Codebook usage on the test images",
    uses="the codes the encoder picks for the test images",
    skip=skip,
)
def draw(scene: Scene, path: Path) -> Path:
    _, num_codes = scene.model.code_indices(scene.x[:1])
    indices = scene.batched(lambda x, y: scene.model.code_indices(x, y)[0], scene.x, scene.y)
    p = usage(indices, num_codes)
    order = np.argsort(-p)
    fig = figure(7.0, 3.2)
    ax = fig.add_subplot()
    ax.bar(np.arange(num_codes), p[order], width=1.0)
    ax.set_xlabel("codes, most used first")
    ax.set_ylabel("fraction of code positions")
    ax.set_title(
        f"Code usage on {len(scene.x)} test images: {(p > 0).sum()}/{num_codes} codes used, "
        f"perplexity {perplexity(p):.1f}",
        fontsize=10,
    )
    return save(fig, path)
