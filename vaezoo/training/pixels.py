"""Image grids at a size people can read: every picture vaezoo writes shows each image at least
MIN_IMAGE_PX tall, enlarged by a whole factor with nearest-neighbour copies (no blur, no new pixels).

An 8×8 digit is drawn 56×56, a 28×28 MNIST digit 56×56, a 64×64 CelebA face as it is. The training
grids (samples.png, reconstructions.png), the learned prior's samples and the labelled pictures of
:mod:`vaezoo.visualize` all go through :func:`upscale`, so their cells match.
"""

from __future__ import annotations

import math
from pathlib import Path

from torch import Tensor

#: Every image in a grid is upscaled (nearest neighbour, by a whole factor) to at least this height.
MIN_IMAGE_PX = 56
#: White pixels between the cells of a grid.
PAD_PX = 2


def upscale_factor(height: int) -> int:
    """The whole-number factor that makes an image of this height at least MIN_IMAGE_PX tall."""
    if height < 1:
        raise ValueError(f"an image must be at least 1 pixel tall, got {height}")
    return max(1, math.ceil(MIN_IMAGE_PX / height))


def upscale(images: Tensor) -> Tensor:
    """Images [..., H, W] enlarged by :func:`upscale_factor` (H) in both directions, nearest neighbour."""
    factor = upscale_factor(images.shape[-2])
    if factor == 1:
        return images
    return images.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def image_grid(images: Tensor, nrow: int = 8) -> Tensor:
    """Images [N, C, H, W] in [0, 1] -> one upscaled grid [C', H', W'], nrow images per row, white gaps."""
    from torchvision.utils import make_grid

    cells = upscale(images.detach().float().cpu().clamp(0, 1))
    return make_grid(cells, nrow=nrow, padding=PAD_PX, pad_value=1.0)


def save_image_grid(grid: Tensor, *paths: Path) -> None:
    """Write a grid from :func:`image_grid` to each path as a PNG (one file pixel per grid pixel)."""
    from torchvision.utils import save_image

    for path in map(Path, paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.tmp")  # renamed into place: never a half-written PNG
        try:
            save_image(grid, partial, format="png")
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
