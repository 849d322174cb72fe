"""Noisy-dSprites (Locatello et al. 2019, disentanglement_lib's NoisyDSprites): dSprites in RGB whose
black background is replaced by uniform noise in [0, 1) per pixel and channel (the sprite stays white).

disentanglement_lib draws fresh noise at every access; here the noise of image ``i`` is drawn once
from ``(nuisance_seed, i)`` (:func:`~vaezoo.data.grid.seeded_uniform`), so the same index always gives
the same image, in training and in the metrics' ground-truth sampling.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from vaezoo.data.dsprites import SIZE, unpack
from vaezoo.data.grid import FactorGrid, dsprites_grid, grid, seeded_uniform


def add_noise(rows: Tensor, cells: Tensor, seed: int) -> Tensor:
    """Bit-packed sprites [B, 512] -> RGB images [B, 3, 64, 64]: min(sprite + noise, 1)."""
    noise = seeded_uniform(seed, cells, 3 * SIZE * SIZE).view(-1, 3, SIZE, SIZE)
    return noise.add_(unpack(rows)).clamp_(max=1.0)


@grid("noisy_dsprites")
def load_noisy_dsprites(root: Path, nuisance_seed: int = 0) -> FactorGrid:
    """dSprites' grid on noise backgrounds (see the module docstring)."""
    return dsprites_grid(root, lambda rows, cells: add_noise(rows, cells, nuisance_seed), 3, "noisy_dsprites")
