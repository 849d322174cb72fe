"""Residual VQ as the VQ-VAE's ``model.quantizer=rvq``: the error falls with each stage, codes round-trip,
the gradient is copied straight through, losses and usage are per stage, the staged PixelCNN prior is a
normalised distribution over all stages' codes, and a tiny run and its prior stage go through the CLI."""

from __future__ import annotations

import itertools
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
from vaezoo.models.vqvae import ResidualVectorQuantizer, straight_through

DIGITS = DataInfo("digits", (1, 8, 8), 2, 10)
TINY_RVQ = {"quantizer": "rvq", "rvq_levels": 3, "num_codes": 8, "code_dim": 4, "channels": [16, 32]}


def lattice_rvq(stages: int) -> ResidualVectorQuantizer:
    """Stage s's codebook is the 5x5 grid of spacing 4^-s about 0 in 2-D: each stage refines the last."""
    rvq = ResidualVectorQuantizer(stages, 25, 2, restart_every=0).eval()
    steps = torch.arange(-2, 3, dtype=torch.float)
    grid = torch.cartesian_prod(steps, steps)
    with torch.no_grad():
        for s, stage in enumerate(rvq.stages):
            stage.codebook.copy_(grid * 4.0**-s)
    return rvq


def errors_per_stage(rvq: ResidualVectorQuantizer, z_e: torch.Tensor) -> list[float]:
    """‖z_e − Σ_{t≤s} e_t‖² after each stage s."""
    partial, out = torch.zeros_like(z_e), []
    with torch.no_grad():
        per_stage = rvq.quantize_stages(z_e)
    for _, e, _, _ in per_stage:
        partial = partial + e
        out.append(float((z_e - partial).square().sum()))
    return out


def test_error_of_a_fixed_vector_falls_with_each_stage_to_the_lattice_bound():
    rvq = lattice_rvq(4)
    # base-4 digits (1, 2, -1, 1) and (-1, 1, 2, -1) plus a little: no stage's residual is on its lattice
    z_e = torch.tensor([1.4543, -0.6399]).view(1, 2, 1, 1)
    errors = errors_per_stage(rvq, z_e)
    assert all(b < a for a, b in itertools.pairwise(errors)), errors
    for s, err in enumerate(errors):  # within half a cell of stage s's lattice: (4^-s / 2)^2 per dim
        assert err <= 2 * (0.5 * 4.0**-s) ** 2 + 1e-9
    z_q, codes, stats = rvq(z_e)
    assert codes.shape == (1, 4, 1, 1)
    assert float((z_e - z_q.detach()).square().sum()) == pytest.approx(errors[-1], abs=1e-9)
    assert set(stats) == {f"vq/stage{s}/{k}" for s in (1, 2, 3, 4) for k in ("perplexity", "codes_used")}


def test_ema_fitted_stages_each_lower_the_error():
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(3, 16, 4, update="ema", ema_decay=0.8, restart_every=5)
    data = torch.randn(512, 4, 1, 1)
    for _ in range(60):
        rvq(data)
    rvq.eval()
    errors = errors_per_stage(rvq, data)
    assert all(b < 0.9 * a for a, b in itertools.pairwise(errors)), errors
    assert errors[0] < 0.6 * float(data.square().sum())


def test_indices_and_codes_round_trip():
    torch.manual_seed(0)
    model = build_model("vqvae", TINY_RVQ, DIGITS, Bernoulli()).eval()
    x = torch.bernoulli(torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    z_q, codes, _ = model.quantize(model.encode(x))
    assert codes.shape == (6, 3, *model.grid) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < 8
    assert torch.equal(model.quantizer.lookup(codes), z_q)
    assert torch.equal(model.codes(x), codes)
    assert torch.allclose(model.decode_codes(codes), model.reconstruct(x))
    index_grid, k = model.code_indices(x)
    assert k == 8 and torch.equal(index_grid, codes)


def test_straight_through_is_the_identity_gradient():
    z_e = torch.randn(2, 3, requires_grad=True)
    z_q = torch.randn(2, 3)
    out = straight_through(z_e, z_q)
    assert torch.equal(out, z_e + (z_q - z_e))  # forward: the quantised value
    assert torch.allclose(out, z_q)
    jac = torch.autograd.functional.jacobian(lambda z: straight_through(z, z_q), z_e.detach())
    assert torch.equal(jac.reshape(6, 6), torch.eye(6))


def test_losses_and_usage_are_per_stage_and_the_codebook_loss_moves_its_own_codebook():
    torch.manual_seed(0)
    model = build_model("vqvae", TINY_RVQ, DIGITS, Bernoulli())
    x = torch.bernoulli(torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0)))
    terms = model.elbo_terms(x)
    stages = (1, 2, 3)
    assert set(terms.extra) == {f"vq/stage{s}/{k}" for s in stages for k in ("commitment", "codebook")}
    assert set(terms.stats) == {f"vq/stage{s}/{k}" for s in stages for k in ("perplexity", "codes_used")}
    positions = model.grid[0] * model.grid[1]
    assert torch.allclose(terms.kl["codes"].sum(1), torch.full((8,), positions * 3 * math.log(8)))
    terms.extra["vq/stage2/codebook"].sum().backward(retain_graph=True)
    grads = [stage.codebook.grad for stage in model.quantizer.stages]
    assert grads[0] is None or float(grads[0].abs().sum()) == 0
    assert float(grads[1].abs().sum()) > 0
    assert grads[2] is None or float(grads[2].abs().sum()) == 0
    assert all(p.grad is None for p in model.encoder.parameters())  # the codebook loss stops at z_e
    ema = build_model("vqvae", {**TINY_RVQ, "codebook_update": "ema"}, DIGITS, Bernoulli())
    assert set(ema.elbo_terms(x).extra) == {f"vq/stage{s}/commitment" for s in stages}


def test_staged_prior_is_a_normalised_distribution_over_every_stages_codes():
    torch.manual_seed(0)
    prior = PixelCNNPrior(2, (1, 2), channels=8, layers=1, stages=2)
    with torch.no_grad():
        for p in prior.parameters():
            p.normal_(0, 0.5)  # away from uniform, so a mask leak would show
        grids = torch.tensor(list(itertools.product(range(2), repeat=4))).view(16, 1, 2, 1, 2)
        codes = grids.squeeze(1).permute(0, 3, 1, 2)  # [16, S=2, 1, 2]
        log_p = prior.log_prob(codes)
    assert float(torch.logsumexp(log_p, 0)) == pytest.approx(0.0, abs=1e-5)
    assert float(log_p.std()) > 0.05  # not the uniform distribution
    samples = prior.sample(5)
    assert samples.shape == (5, 2, 1, 2) and int(samples.max()) < 2


def test_rvq_prior_must_match_the_stages():
    model = build_model("vqvae", TINY_RVQ, DIGITS, Bernoulli())
    with pytest.raises(ConfigError, match=r"1 stage\(s\).*does not fit.*3 stage\(s\)"):
        model.attach_prior(PixelCNNPrior(8, model.grid, channels=8, layers=1))
    model.attach_prior(PixelCNNPrior(8, model.grid, channels=8, layers=1, stages=3))
    model.eval()
    assert model.sample(2).shape == (2, 1, 8, 8)
    assert model.decode_latent(model.prior_latents(2)).shape == (2, 1, 8, 8)


def test_bad_rvq_levels_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match=r"model\.rvq_levels must be an integer >= 1"):
        build_model("vqvae", {**TINY_RVQ, "rvq_levels": 0}, DIGITS, Bernoulli())


def test_one_epoch_rvq_run_logs_usage_per_stage_and_its_prior_stage_runs(tmp_path: Path):
    settings = [*TINY, "trainer.max_epochs=1", "trainer.log_every_n_steps=1", "logger=csv"]
    model = ["model=vqvae", "model.quantizer=rvq", "model.rvq_levels=2", "model.num_codes=16"]
    proc = run_cli([*model, "model.channels=[16,32]", *settings], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = (tmp_path / "runs").rglob("results.json")
    job = results.parent
    logged = "".join(p.read_text().splitlines()[0] for p in job.rglob("metrics.csv"))
    for s in (1, 2):
        for key in ("perplexity", "codes_used", "commitment", "codebook"):
            assert f"train/vq/stage{s}/{key}" in logged, key
    assert "vq/stage3" not in logged

    prior_args = [f"run={job}", "hardware=cpu", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"]
    prior_args += ["prior.channels=8", "prior.layers=1", "n_samples=4", "logger=csv"]
    proc = run_cli(prior_args, cwd=tmp_path, module="vaezoo.stages.prior")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((job / "prior" / "results.json").read_text())
    assert report["prior"]["stages"] == 2
    codes_per_grid = report["uniform_prior_nll_nats"] / math.log(16)
    assert codes_per_grid == pytest.approx(2 * round(codes_per_grid / 2))  # S = 2 codes per position
    assert report["test_code_nll_nats"] < report["uniform_prior_nll_nats"] * 1.5
    assert (job / "prior" / "samples.png").is_file()
