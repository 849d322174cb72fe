"""Finite scalar quantisation (Mentzer et al. 2023) as the VQ-VAE's ``model.quantizer=fsq``: known
answers for the grid, the index bijection and the straight-through gradient, and a tiny run + prior."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY, run_cli
from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.likelihoods import Bernoulli
from vaezoo.models import build_model
from vaezoo.models.pixelcnn import PixelCNNPrior
from vaezoo.models.vqvae import FiniteScalarQuantizer, round_ste

DIGITS = DataInfo("digits", (1, 8, 8), 2, 10)
LEVELS = [8, 5, 3, 2]  # even and odd levels, 240 codes
TINY_FSQ = {"quantizer": "fsq", "fsq_levels": [4, 3], "channels": [16, 32], "res_blocks": 1}


def channels_last_grid(levels: list[int]) -> list[torch.Tensor]:
    """Each channel's L levels, as FSQ normalises them: {-L//2, ..., L-1-L//2} / (L//2)."""
    return [(torch.arange(n) - n // 2) / (n // 2) for n in levels]


def test_quantised_codes_are_exact_grid_points_in_minus_one_one():
    fsq = FiniteScalarQuantizer(LEVELS)
    # a dense sweep through (-6, 6) on every channel: every level is reached, whatever the seed
    sweep = torch.linspace(-6, 6, 4 * 6 * 6).reshape(4, 1, 6, 6)
    z = sweep.expand(4, len(LEVELS), 6, 6).clone()
    z_q, codes, stats = fsq(z)
    assert z_q.shape == z.shape and codes.shape == (4, 6, 6)
    assert float(z_q.min()) >= -1 and float(z_q.max()) <= 1
    for i, allowed in enumerate(channels_last_grid(LEVELS)):
        values = z_q[:, i].flatten()
        assert bool(torch.isin(values, allowed).all()), (LEVELS[i], values.unique())
        assert len(values.unique()) == LEVELS[i]  # every level is reachable
    assert 1.0 <= float(stats["vq/perplexity"]) <= math.prod(LEVELS)
    assert 0 < float(stats["vq/codes_used"]) <= 1


def test_zero_maps_to_the_zero_level_and_bound_keeps_l_levels():
    fsq = FiniteScalarQuantizer(LEVELS)
    assert torch.equal(fsq.quantize(torch.zeros(len(LEVELS))), torch.zeros(len(LEVELS)))
    huge = torch.tensor([1e4, -1e4]).unsqueeze(1).expand(2, len(LEVELS))
    digits = torch.round(fsq.bound(huge))
    assert torch.equal(digits[0], torch.tensor([n - 1 - n // 2 for n in LEVELS], dtype=torch.float))
    assert torch.equal(digits[1], torch.tensor([-(n // 2) for n in LEVELS], dtype=torch.float))


def test_index_code_mapping_is_a_bijection_over_the_whole_grid():
    fsq = FiniteScalarQuantizer(LEVELS)
    k = math.prod(LEVELS)
    assert fsq.num_codes == k and fsq.code_dim == len(LEVELS)
    indices = torch.arange(k)
    codes = fsq.indices_to_codes(indices)
    assert codes.shape == (k, len(LEVELS))
    assert len(torch.unique(codes, dim=0)) == k  # injective, so a bijection onto the k grid points
    for i, allowed in enumerate(channels_last_grid(LEVELS)):
        assert bool(torch.isin(codes[:, i], allowed).all())
    assert torch.equal(fsq.codes_to_indices(codes), indices)
    # and the whole Cartesian grid maps onto 0..k-1
    grid = torch.cartesian_prod(*channels_last_grid(LEVELS))
    assert torch.equal(fsq.codes_to_indices(grid).sort().values, indices)
    # the unbound encoder outputs of each grid point quantise back to it
    assert torch.equal(fsq.quantize(fsq.unbound(codes)), codes)


def test_straight_through_rounding_has_identity_gradient():
    fsq = FiniteScalarQuantizer(LEVELS)
    bounded = fsq.bound(torch.randn(5, len(LEVELS)) * 3).detach().requires_grad_(True)
    rounded = round_ste(bounded)
    assert torch.equal(rounded, torch.round(bounded))
    (grad,) = torch.autograd.grad(rounded, bounded, torch.ones_like(rounded))
    assert torch.equal(grad, torch.ones_like(bounded))
    # per element, not just summed: the Jacobian is the identity
    jac = torch.autograd.functional.jacobian(round_ste, bounded.detach()[0])
    assert torch.equal(jac, torch.eye(len(LEVELS)))


@pytest.mark.parametrize("levels", [[], [8, 1], [0]])
def test_bad_levels_are_a_one_line_config_error(levels):
    with pytest.raises(ConfigError, match=r"model\.fsq_levels=.* must be a non-empty list of integers >= 2"):
        FiniteScalarQuantizer(levels)


def test_unknown_quantizer_is_a_config_error():
    with pytest.raises(ConfigError, match=r"model\.quantizer='pq' must be one of vq, fsq"):
        build_model("vqvae", {**TINY_FSQ, "quantizer": "pq"}, DIGITS, Bernoulli())


def test_fsq_vqvae_has_no_vq_losses_and_its_gradient_reaches_the_encoder():
    torch.manual_seed(0)
    model = build_model("vqvae", TINY_FSQ, DIGITS, Bernoulli())
    assert model.num_codes == 12 and model.code_dim == 2
    x = torch.bernoulli(torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    terms = model.elbo_terms(x)
    assert terms.extra == {}
    assert set(terms.stats) == {"vq/perplexity", "vq/codes_used"}
    positions = model.grid[0] * model.grid[1]
    assert torch.allclose(terms.kl["codes"].sum(1), torch.full((8,), positions * math.log(12)))
    (-terms.elbo.mean()).backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.encoder.parameters())
    codes = model.codes(x)
    assert codes.dtype == torch.long and int(codes.min()) >= 0 and int(codes.max()) < 12
    model.eval()
    assert torch.allclose(model.decode_codes(codes), model.reconstruct(x))
    model.attach_prior(PixelCNNPrior(12, model.grid, channels=8, layers=1))
    assert model.sample(3).shape == (3, 1, 8, 8)
    z = model.prior_latents(3)
    assert model.decode_latent(z).shape == (3, 1, 8, 8)


def test_tiny_fsq_vqvae_trains_and_its_prior_stage_runs(tmp_path: Path):
    settings = [*TINY, "trainer.max_epochs=1", "trainer.log_every_n_steps=1", "logger=csv"]
    model = ["model=vqvae", "model.quantizer=fsq", "model.fsq_levels=[4,3]", "model.channels=[16,32]"]
    proc = run_cli([*model, *settings], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = (tmp_path / "runs").rglob("results.json")
    job = results.parent
    assert json.loads(results.read_text())["model"] == "vqvae"
    logged = "".join(p.read_text().splitlines()[0] for p in job.rglob("metrics.csv"))
    assert "train/vq/perplexity" in logged and "train/vq/codes_used" in logged
    assert "vq/commitment" not in logged and "vq/codebook" not in logged

    prior_args = [f"run={job}", "hardware=cpu", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"]
    prior_args += ["prior.channels=8", "prior.layers=1", "n_samples=4", "logger=csv"]
    proc = run_cli(prior_args, cwd=tmp_path, module="vaezoo.stages.prior")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((job / "prior" / "results.json").read_text())
    positions = report["uniform_prior_nll_nats"] / math.log(12)
    assert positions == pytest.approx(round(positions))  # log K per position, K = 4 * 3
    assert (job / "prior" / "samples.png").is_file()


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("commitment", 0.5),
        ("codebook_update", "ema"),
        ("ema_decay", 0.9),
        ("restart_every", 0),
        ("restart_threshold", 2.0),
    ],
)
def test_a_codebook_setting_under_fsq_is_a_one_line_config_error_naming_it(setting, value):
    with pytest.raises(
        ConfigError, match=rf"model\.{setting}={value} has no effect with model\.quantizer=fsq"
    ):
        build_model("vqvae", {**TINY_FSQ, setting: value}, DIGITS, Bernoulli())
    build_model("vqvae", {**TINY_FSQ, "quantizer": "vq", setting: value}, DIGITS, Bernoulli())  # vq: fine
