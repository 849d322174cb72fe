"""Pictures of the latent space (vaezoo.visualize): shapes and content, on tiny untrained digits models."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from matplotlib.image import imread

from vaezoo.builder import build_module
from vaezoo.visualize import PICTURES, Scene, draw_pictures
from vaezoo.visualize.figures import MIN_IMAGE_PX, PAD_PX, labelled_grid, tile
from vaezoo.visualize.interpolations import lerp, slerp
from vaezoo.visualize.traversals import dim_label, dims_by_kl, sweep_values, traverse

FAST = dict(n_examples=120, tsne_points=60)


def digits_model(compose_cfg, *overrides: str):
    datamodule, module = build_module(compose_cfg("dataset=digits", "hardware=cpu", *overrides))
    return datamodule, module.model.eval()


def silence_unit(model, unit: int) -> None:
    """Make one unit of a vanilla VAE inactive (constant posterior N(0, 1), ignored by the decoder) and
    the others clearly active (posterior means that vary across examples)."""
    d = model.decoder.net[0].in_features
    with torch.no_grad():
        model.posterior.weight[:d] *= 30
        for row in (unit, d + unit):  # posterior mean and log-variance of the unit
            model.posterior.weight[row] = 0
            model.posterior.bias[row] = 0
        model.decoder.net[0].weight[:, unit] = 0


def test_slerp_keeps_the_norm_of_gaussian_latents_where_lerp_shrinks_it():
    torch.manual_seed(0)
    d = 256
    a, b = torch.randn(64, d), torch.randn(64, d)
    t = torch.tensor([0.0, 0.5, 1.0])
    mid_slerp = slerp(a, b, t)[:, 1].norm(dim=1)
    mid_lerp = lerp(a, b, t)[:, 1].norm(dim=1)
    ends = (a.norm(dim=1) + b.norm(dim=1)) / 2
    assert torch.allclose(slerp(a, b, t)[:, 0], a, atol=1e-5) and torch.allclose(
        slerp(a, b, t)[:, 2], b, atol=1e-4
    )
    assert (mid_slerp / ends - 1).abs().max() < 0.05  # stays on the shell of radius ~sqrt(d)
    # Two independent Gaussians are nearly orthogonal: the midpoint of the chord has norm ~ sqrt(d/2).
    assert (mid_lerp / ends).mean() == pytest.approx(1 / math.sqrt(2), abs=0.03)


def test_slerp_of_parallel_vectors_is_lerp():
    a = torch.tensor([[1.0, 2.0]])
    t = torch.linspace(0, 1, 5)
    assert torch.allclose(slerp(a, 3 * a, t), lerp(a, 3 * a, t))


def test_grid_upscales_small_digits_and_labels_rows_and_columns(tmp_path: Path):
    images = torch.rand(3, 4, 1, 8, 8)
    canvas = tile(images)
    cell = MIN_IMAGE_PX  # 8 px digits -> x7 -> 56 px
    assert canvas.shape == (3 * cell + 2 * PAD_PX, 4 * cell + 3 * PAD_PX)
    assert canvas[:cell, :cell] == pytest.approx(
        images[0, 0, 0].repeat_interleave(7, 0).repeat_interleave(7, 1).numpy()
    )
    assert (canvas[cell : cell + PAD_PX] == 1).all()  # white padding between rows
    path = labelled_grid(
        images, tmp_path / "g.png", title="t", row_labels=["a", "bb", "ccc"], col_labels=list("wxyz")
    )
    png = imread(path)
    # The canvas is drawn at one screen pixel per canvas pixel, plus room for the title and labels.
    assert png.shape[0] > canvas.shape[0] + 22 and png.shape[1] > canvas.shape[1] + 8


def test_traversal_of_an_inactive_unit_changes_the_image_less_than_an_active_one(compose_cfg, tmp_path: Path):
    torch.manual_seed(0)
    datamodule, model = digits_model(compose_cfg, "model.latent_dim=4")
    silence_unit(model, 3)
    from vaezoo.visualize import first_test_examples

    x, y = first_test_examples(datamodule, 100)
    scene = Scene(model=model, x=x, y=y)
    with torch.no_grad():
        assert scene.active.tolist() == [True, True, True, False]
        assert scene.kl_per_dim[3] == pytest.approx(0.0, abs=1e-6)
        assert dims_by_kl(scene, 4)[-1] == 3 and "inactive" in dim_label(scene, 3)
        assert "inactive" not in dim_label(scene, 0)
        values = sweep_values(scene, 9)
        assert values[0].tolist() == pytest.approx(
            torch.distributions.Normal(0, 1).icdf(torch.linspace(0.05, 0.95, 9)).tolist()
        )
        images = traverse(scene, scene.codes[:2], [0, 1, 2, 3], values, None)  # [4 dims, 2 * 9, 1, 8, 8]
    assert images.shape == (4, 18, 1, 8, 8)
    blocks = images.reshape(4, 2, 9, 1, 8, 8)  # per dimension: 2 start images x 9 values
    change = (blocks - blocks[:, :, 4:5]).abs().mean(dim=(1, 2, 3, 4, 5))  # against the middle value
    assert change[3] < 1e-6 < 1e-3 < change[:3].min()


def test_every_picture_that_applies_is_drawn_with_upscaled_grids(compose_cfg, tmp_path: Path):
    torch.manual_seed(0)
    datamodule, model = digits_model(compose_cfg, "model.latent_dim=2")
    drawn = draw_pictures(model, datamodule, tmp_path, **FAST)
    # A 2-unit vanilla VAE on labelled digits: everything but the family- and factor-specific views.
    assert set(drawn) == {"traversals", "interpolations", "manifold", "tsne", "anomaly_histograms"}
    for name, path in drawn.items():
        assert path == tmp_path / f"{name}.png" and path.stat().st_size > 1000
    manifold = imread(drawn["manifold"])
    assert manifold.shape[0] >= 15 * MIN_IMAGE_PX and manifold.shape[1] >= 15 * MIN_IMAGE_PX
    # The manifold's corners differ: the decoder really was swept over the grid.
    grey = manifold[..., :3].mean(-1)
    assert grey.std() > 0.05


@pytest.mark.parametrize(
    ("model", "family_picture"), [("cvae", "class_rows"), ("hvae", "layers"), ("vqvae", "code_usage")]
)
def test_family_specific_pictures(compose_cfg, tmp_path: Path, model: str, family_picture: str):
    datamodule, vae = digits_model(compose_cfg, f"model={model}")
    drawn = draw_pictures(vae, datamodule, tmp_path, only=[family_picture, "traversals"], **FAST)
    assert set(drawn) == {family_picture, "traversals"}
    assert imread(drawn[family_picture]).shape[0] >= MIN_IMAGE_PX


def test_training_curves_come_from_metrics_rows(compose_cfg, tmp_path: Path):
    datamodule, model = digits_model(compose_cfg)
    rows = [
        {"step": str(s), "train/elbo": str(-100 + s), "train/kl": str(s / 10), "train/kl/beta": "1.0"}
        for s in range(0, 50, 10)
    ]
    drawn = draw_pictures(model, datamodule, tmp_path, metrics_rows=rows, only=["curves"], **FAST)
    assert imread(drawn["curves"]).shape[1] > 600
    assert draw_pictures(model, datamodule, tmp_path / "none", only=["curves"], **FAST) == {}


def test_unknown_picture_or_ood_set_is_one_clear_error(compose_cfg, tmp_path: Path):
    from vaezoo.errors import ConfigError

    datamodule, model = digits_model(compose_cfg)
    with pytest.raises(ConfigError, match=r"unknown picture.*choose from"):
        draw_pictures(model, datamodule, tmp_path, only=["nope"])
    with pytest.raises(ConfigError, match=r"pictures\.ood='upside'"):
        draw_pictures(model, datamodule, tmp_path, ood="upside")


def test_every_registered_picture_says_where_it_applies():
    assert len(PICTURES) >= 10
    assert all(p.applies_to for p in PICTURES.values())


def test_factor_traversals_pick_the_unit_that_carries_each_factor(compose_cfg, tmp_path: Path):
    from vaezoo.visualize import PICTURES, Factors, first_test_examples
    from vaezoo.visualize.factor_traversals import most_informative

    torch.manual_seed(0)
    datamodule, model = digits_model(compose_cfg, "model.latent_dim=4")
    silence_unit(model, 3)
    x, y = first_test_examples(datamodule, 200)
    with torch.no_grad():
        codes = model.representation(x, y)
    # Two known factors: one read off unit 2, one off unit 0 (thresholded, as discrete factors are).
    factors = torch.stack([(codes[:, 2] > codes[:, 2].median()).long(), (codes[:, 0] * 3).round().long()], 1)
    assert [d for d, _ in most_informative(codes, factors)] == [2, 0]
    scene = Scene(model=model, x=x, y=y, factors=Factors(["size", "shape"], factors))
    with torch.no_grad():
        path = PICTURES["factor_traversals"].draw(scene, tmp_path / "f.png")
    assert imread(path).shape[0] >= 2 * MIN_IMAGE_PX


def test_cli_draws_factor_traversals_for_an_array_file_with_factors(tmp_path: Path):
    """Factors given with the data (dataset=arrays ... factors) reach the factor-traversal picture."""
    import numpy as np

    from tests.conftest import TINY, run_cli

    rng = np.random.default_rng(0)
    n = 240
    factors = np.stack([rng.integers(0, 4, n), rng.integers(0, 4, n)], axis=1)
    images = np.zeros((n, 16, 16), dtype=np.uint8)
    for i, (row, col) in enumerate(factors):  # a 4x4 bright square at a position set by the two factors
        images[i, row * 4 : row * 4 + 4, col * 4 : col * 4 + 4] = 1  # binary: 0/1
    path = tmp_path / "squares.npz"
    np.savez(path, images=images, factors=factors, factor_names=np.array(["row", "col"]))
    job = tmp_path / "job"
    args = [a for a in TINY if not a.startswith(("dataset=", "pictures."))]
    args += ["dataset=arrays", f"dataset.path={path}", "pictures.n_examples=40", "pictures.tsne_points=40"]
    proc = run_cli([*args, "logger=csv", f"hydra.run.dir={job}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    picture = imread(job / "images" / "factor_traversals.png")
    assert picture.shape[0] >= 2 * MIN_IMAGE_PX  # one row per factor
