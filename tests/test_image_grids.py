"""Every image grid vaezoo writes shows each image in cells of at least 56 pixels (nearest neighbour)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from vaezoo.builder import build_module
from vaezoo.training.callbacks import ImageGrids
from vaezoo.training.pixels import MIN_IMAGE_PX, PAD_PX, image_grid, upscale, upscale_factor


def test_upscale_factor_known_answers():
    assert [upscale_factor(h) for h in (8, 16, 28, 32, 56, 64)] == [7, 4, 2, 2, 1, 1]
    with pytest.raises(ValueError, match="at least 1 pixel"):
        upscale_factor(0)


def test_grid_cells_are_whole_factor_copies_of_each_pixel():
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    grid = image_grid(images, nrow=2)
    cell = MIN_IMAGE_PX + PAD_PX
    assert grid.shape == (3, 2 * cell + PAD_PX, 2 * cell + PAD_PX)  # make_grid repeats grey as RGB
    second = grid[0, PAD_PX : PAD_PX + 56, cell + PAD_PX : cell + PAD_PX + 56]
    assert torch.equal(second, images[1, 0].repeat_interleave(7, 0).repeat_interleave(7, 1))
    assert torch.equal(second[7 * 3 : 7 * 4, 7 * 5 : 7 * 6], torch.full((7, 7), float(images[1, 0, 3, 5])))
    assert (grid[:, :, MIN_IMAGE_PX + PAD_PX : cell + PAD_PX] == 1).all()  # white gap between columns
    big = torch.rand(2, 3, 64, 64)
    assert upscale(big) is big  # already 56 pixels or more: drawn as it is


def test_training_grids_are_written_in_56_pixel_cells(compose_cfg, tmp_path):
    torch.manual_seed(0)
    datamodule, module = build_module(compose_cfg("dataset=digits", "hardware=cpu"))
    datamodule.load()
    trainer = SimpleNamespace(datamodule=datamodule, loggers=[], current_epoch=0, global_step=0)
    ImageGrids(tmp_path, n_images=16).render(trainer, module, tag="epoch000")
    cell = MIN_IMAGE_PX + PAD_PX
    for name in ("samples", "reconstructions"):
        png = np.asarray(Image.open(tmp_path / f"{name}.png").convert("L"))
        assert png.shape == (2 * cell + PAD_PX, 8 * cell + PAD_PX), name  # 16 images, 8 a row, 8 -> 56 px
        assert (tmp_path / f"{name}_epoch000.png").read_bytes() == (tmp_path / f"{name}.png").read_bytes()
    # The reconstructions' first row is the first validation images, each pixel a 7 x 7 block.
    png = np.asarray(Image.open(tmp_path / "reconstructions.png").convert("L")).astype(float) / 255
    first = datamodule.splits["val"][torch.arange(1)]["x"][0, 0].float()
    expected = first.repeat_interleave(7, 0).repeat_interleave(7, 1).numpy()
    assert np.abs(png[PAD_PX : PAD_PX + 56, PAD_PX : PAD_PX + 56] - expected).max() <= 1 / 255
