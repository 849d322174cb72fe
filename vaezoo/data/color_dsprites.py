"""Color-dSprites (Locatello et al. 2019, disentanglement_lib's ColorDSprites): dSprites with the
sprite drawn in a random colour, each RGB channel uniform in [0.5, 1], on a black background.

disentanglement_lib draws a fresh colour at every access; here the colour of image ``i`` is drawn
once from ``(nuisance_seed, i)`` (:func:`~vaezoo.data.grid.seeded_uniform`), so the metrics' ground-truth
sampling and training see the same image for the same index, reproducibly. The colour is still a
nuisance independent of the five factors (it is uniform over the grid's cells).
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from vaezoo.data.dsprites import unpack
from vaezoo.data.grid import FactorGrid, dsprites_grid, grid, seeded_uniform


def colourise(rows: Tensor, cells: Tensor, seed: int) -> Tensor:
    """Bit-packed sprites [B, 512] -> RGB images [B, 3, 64, 64]: sprite pixels take the cell's colour."""
    colour = seeded_uniform(seed, cells, 3).mul_(0.5).add_(0.5)  # uniform in [0.5, 1) per channel
    return unpack(rows) * colour[:, :, None, None]


@grid("color_dsprites")
def load_color_dsprites(root: Path, nuisance_seed: int = 0) -> FactorGrid:
    """dSprites' grid with coloured sprites (see the module docstring)."""
    return dsprites_grid(root, lambda rows, cells: colourise(rows, cells, nuisance_seed), 3, "color_dsprites")
