"""Scream-dSprites (Locatello et al. 2019, disentanglement_lib's ScreamDSprites): each dSprites image
on a random 64x64 patch of Munch's *The Scream*, colour-shifted, with the sprite's pixels inverted.

As in disentanglement_lib: the painting is shrunk to fit 350x274 (``Image.thumbnail``), a patch is
cropped at a random position, the background is (patch + a random RGB shift in [0, 1)) / 2, and sprite
pixels become 1 - background. The painting is not shipped: ``dataset.scream_image`` names the user's
copy (default ``<root>/scream/scream.jpg``). The crop and shift of image ``i`` are drawn once from
``(nuisance_seed, i)`` (:func:`~vaezoo.data.grid.seeded_uniform`), not at every access as there, so the
same index always gives the same image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from vaezoo.data.dsprites import SIZE, unpack
from vaezoo.data.grid import FactorGrid, Storage, dsprites_grid, grid, seeded_uniform
from vaezoo.errors import DataError

SCREAM_URL = "https://upload.wikimedia.org/wikipedia/commons/f/f4/The_Scream.jpg"
#: disentanglement_lib's ``scream.thumbnail((350, 274, 3))``: the largest size the painting is shrunk to.
THUMBNAIL = (350, 274)


def read_scream(path: Path) -> Tensor:
    """The painting as float RGB [3, H, W] in [0, 1], shrunk as disentanglement_lib shrinks it."""
    get = f"download it from {SCREAM_URL} to {path} or set dataset.scream_image to your copy"
    if not path.is_file():
        raise DataError(
            f"dataset=scream_dsprites needs the Scream image at dataset.scream_image={path}; {get}"
        )
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail(THUMBNAIL)
            pixels = np.asarray(image, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as err:
        raise DataError(
            f"dataset.scream_image={path} is not a readable image ({type(err).__name__}); {get}"
        ) from None
    if min(pixels.shape[:2]) <= SIZE:
        raise DataError(
            f"dataset.scream_image={path} is {pixels.shape[1]}x{pixels.shape[0]} after shrinking to fit "
            f"{THUMBNAIL[0]}x{THUMBNAIL[1]}; 64x64 patches need both sides over {SIZE} pixels; {get}"
        )
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


def on_scream(rows: Tensor, cells: Tensor, scream: Tensor, seed: int) -> Tensor:
    """Bit-packed sprites [B, 512] -> RGB images [B, 3, 64, 64] on patches of ``scream`` [3, H, W]."""
    _, height, width = scream.shape
    draw = seeded_uniform(seed, cells, 5)
    top = (draw[:, 0] * (height - SIZE)).long()  # in [0, H - 64), as randint(0, H - 64)
    left = (draw[:, 1] * (width - SIZE)).long()
    steps = torch.arange(SIZE, device=rows.device)
    ys, xs = top[:, None] + steps, left[:, None] + steps  # [B, 64] each
    patch = scream[:, ys[:, :, None], xs[:, None, :]].transpose(0, 1)  # [B, 3, 64, 64]
    background = (patch + draw[:, 2:, None, None]) / 2
    return torch.where(unpack(rows).bool(), 1 - background, background)


@grid("scream_dsprites")
def load_scream_dsprites(root: Path, scream_image: str | None = None, nuisance_seed: int = 0) -> FactorGrid:
    """dSprites' grid on patches of the user's copy of The Scream (see the module docstring)."""
    path = Path(scream_image).expanduser() if scream_image else root / "scream" / "scream.jpg"
    scream = Storage(read_scream(path))
    return dsprites_grid(
        root,
        lambda rows, cells: on_scream(rows, cells, scream.on(rows.device), nuisance_seed),
        3,
        "scream_dsprites",
    )
