"""dSprites to the published specification: the factor table, the rendering, bit-packing.

Generating all 737,280 images takes ~15 s of CPU (docs/results.md), so these tests check the
factor table whole and render one (shape, scale) block of 40,960 images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaezoo.data.dsprites import (
    FACTOR_SIZES,
    FIRST_CENTRE,
    PackedSplit,
    factor_classes,
    factor_values,
    render_block,
    unpack,
)


def test_factor_table_has_every_combination_exactly_once_in_the_official_order():
    classes = factor_classes()
    assert classes.shape == (737_280, 6)
    assert len(np.unique(classes, axis=0)) == 737_280 == int(np.prod(FACTOR_SIZES))
    assert classes[1].tolist() == [0, 0, 0, 0, 0, 1] and classes[32].tolist() == [
        0,
        0,
        0,
        0,
        1,
        0,
    ]  # posY fastest
    values = factor_values()
    assert np.allclose(values[2], np.linspace(0.5, 1, 6)) and np.allclose(
        values[3], np.linspace(0, 2 * np.pi, 40)
    )
    assert np.allclose(values[4], np.linspace(0, 1, 32)) and values[1].tolist() == [1, 2, 3]


@pytest.fixture(scope="module")
def heart_block() -> torch.Tensor:
    return torch.from_numpy(render_block(2, 1.0))


def test_a_block_places_each_sprite_at_its_position_and_orientation(heart_block):
    assert heart_block.shape == (40 * 32 * 32, 512) and heart_block.dtype == torch.uint8
    images = unpack(heart_block[:: 32 * 32 // 4][:8]).squeeze(1)  # a few images of orientation 0
    assert set(images.unique().tolist()) <= {0.0, 1.0}
    rows, cols = torch.arange(64.0) + 0.5, torch.arange(64.0) + 0.5
    for k in range(0, 32 * 32, 97):  # (posX, posY) = divmod(k, 32) at orientation 0
        image = unpack(heart_block[k : k + 1])[0, 0]
        pos_x, pos_y = divmod(k, 32)
        mass = image.sum()
        assert mass > 100
        centre_x = float((image.sum(0) * cols).sum() / mass)
        centre_y = float((image.sum(1) * rows).sum() / mass)
        assert abs(centre_x - (FIRST_CENTRE + pos_x)) < 1.0
        assert abs(centre_y - (FIRST_CENTRE + pos_y)) < 3.0  # the heart's mass sits above its box centre
    # 40 orientations at one position: 0 and 2π coincide (as published), the other 39 all differ.
    at_centre = heart_block[torch.arange(40) * 1024 + 16 * 32 + 16]
    assert torch.equal(at_centre[0], at_centre[39])
    assert len(torch.unique(at_centre[:39], dim=0)) == 39


def test_packed_split_unpacks_batches_and_keeps_factors(heart_block):
    factors = torch.arange(12.0).reshape(6, 2)
    split = PackedSplit(heart_block[:6], factors)
    batch = split[torch.tensor([4, 1])]
    assert set(batch) == {"x"} and batch["x"].shape == (2, 1, 64, 64) and batch["x"].dtype == torch.float32
    assert torch.equal(batch["x"][1], unpack(heart_block[1:2])[0])
    assert torch.equal(split.factors, factors) and len(split) == 6
    packed_again = np.packbits(batch["x"].numpy().astype(np.uint8).reshape(2, -1), axis=1)
    assert np.array_equal(packed_again, heart_block[[4, 1]].numpy())
