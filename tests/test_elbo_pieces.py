"""ELBO pieces against independent computations: KL, likelihoods, IW bound, active units."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, ContinuousBernoulli, Normal, kl_divergence

from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.evaluation.metrics import active_units, importance_weighted_bound
from vaezoo.likelihoods import Bernoulli as BernoulliLik
from vaezoo.likelihoods import ContinuousBernoulli as CBLik
from vaezoo.likelihoods import DiscretizedLogistic, Gaussian
from vaezoo.models import build_model
from vaezoo.models.gaussian import gaussian_kl

BINARY = DataInfo("toy", (1, 4, 4), levels=2)
GREY = DataInfo("toy", (1, 4, 4), levels=256)


def test_closed_form_gaussian_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(3, 5), torch.randn(3, 5).clamp(-2, 2)
    q = Normal(mu, torch.exp(0.5 * logvar))
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).mean(0)
    closed = gaussian_kl(mu, logvar)
    assert torch.allclose(closed, mc, atol=0.02, rtol=0.02)
    assert torch.allclose(closed, kl_divergence(q, Normal(0.0, 1.0)), atol=1e-5)


def test_bernoulli_matches_torch_distributions():
    logits, x = torch.randn(6, 1, 4, 4), torch.randint(0, 2, (6, 1, 4, 4)).float()
    expected = Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(BernoulliLik().log_prob(logits, x), expected, atol=1e-5)


@pytest.mark.parametrize("learn_sigma", [False, True])
def test_gaussian_matches_torch_distributions(learn_sigma):
    mu, x = torch.rand(6, 1, 4, 4), torch.rand(6, 1, 4, 4)
    lik = Gaussian(sigma=0.3, learn_sigma=learn_sigma)
    expected = Normal(mu, 0.3).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(lik.log_prob(mu, x), expected, atol=1e-4)
    assert lik.log_sigma.requires_grad == learn_sigma


def test_continuous_bernoulli_matches_torch_distributions_including_near_half():
    logits = torch.cat([torch.randn(5, 16) * 3, torch.full((1, 16), 1e-4)]).view(6, 1, 4, 4)
    x = torch.rand(6, 1, 4, 4)
    expected = ContinuousBernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(CBLik().log_prob(logits, x), expected, atol=1e-3)


def test_discretized_logistic_matches_logistic_cdf_and_normalises():
    torch.manual_seed(0)
    lik = DiscretizedLogistic()
    lik.check_data(GREY, "toy")
    mu, log_scale = torch.rand(1, 1, 1, 1) * 2 - 1, torch.tensor(-2.0).view(1, 1, 1, 1)
    levels = torch.arange(256.0) / 255
    x = levels.view(256, 1, 1, 1)
    params = torch.cat([mu, log_scale], 1).expand(256, 2, 1, 1)
    log_p = lik.log_prob(params, x)
    # Independent computation: logistic CDF differences over bin edges in [-1, 1].
    centres = x.flatten() * 2 - 1
    cdf = lambda v: torch.sigmoid((v - mu.flatten()) / log_scale.exp())  # noqa: E731
    hw = 1 / 255
    upper = torch.where(centres > 1 - 1e-3, torch.ones(256), cdf(centres + hw))
    lower = torch.where(centres < -1 + 1e-3, torch.zeros(256), cdf(centres - hw))
    assert torch.allclose(log_p, torch.log(upper - lower), atol=1e-3)
    assert math.isclose(float(log_p.exp().sum()), 1.0, rel_tol=1e-4)


def test_bernoulli_on_grey_data_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"binarize=dynamic.*continuous_bernoulli"):
        BernoulliLik().check_data(GREY, "fashion_mnist")


def _toy_model(latent_dim: int = 4):
    torch.manual_seed(0)
    return build_model(
        "vanilla", {"latent_dim": latent_dim, "net": {"kind": "mlp", "hidden": [32]}}, BINARY, BernoulliLik()
    )


def test_importance_weighted_bound_is_above_elbo_and_rises_with_k():
    model = _toy_model().eval()
    with torch.no_grad():  # a poor, over-confident posterior leaves room for importance weighting
        model.posterior.weight.mul_(0.1)
        model.posterior.bias.copy_(torch.tensor([0.5] * 4 + [-3.0] * 4))
    torch.manual_seed(1)
    x = torch.randint(0, 2, (64, 1, 4, 4)).float()
    batches = [{"x": x}]
    with torch.no_grad():
        elbo = torch.stack([model.elbo_terms(x).elbo for _ in range(200)]).mean(0)
    bounds = {
        k: importance_weighted_bound(model.log_importance_weights, batches, k, chunk=7) for k in (1, 10, 100)
    }
    assert torch.allclose(bounds[1].mean(), elbo.mean(), atol=0.3)  # k = 1 is the ELBO (in expectation)
    assert bounds[10].mean() > elbo.mean()
    assert bounds[100].mean() > bounds[10].mean() > bounds[1].mean()
    assert (bounds[100] >= elbo - 0.05).float().mean() > 0.95


def test_importance_weights_are_log_joint_minus_log_posterior():
    model = _toy_model().eval()
    x = torch.randint(0, 2, (3, 1, 4, 4)).float()
    torch.manual_seed(5)
    lw = model.log_importance_weights(x, k=1)[0]
    torch.manual_seed(5)
    q = model.encode(x)
    z = q.rsample()
    expected = (
        model.likelihood.log_prob(model.decode(z), x)
        + Normal(0.0, 1.0).log_prob(z).sum(-1)
        - q.log_prob(z).sum(-1)
    )
    assert torch.allclose(lw, expected, atol=1e-4)


def test_active_units_counts_units_whose_mean_varies_across_data():
    x = torch.zeros(500, 1)
    means = torch.cat([torch.randn(500, 3), 0.01 * torch.randn(500, 2)], dim=1)
    count, variances = active_units(lambda x, y: means[: len(x)], [{"x": x}], threshold=0.01)
    assert count == 3
    assert variances.shape == (5,)


def test_bits_per_dim_only_for_likelihoods_that_give_probabilities_of_pixel_values():
    from vaezoo.evaluation.held_out import evaluate

    colour = DataInfo("toy", (3, 4, 4), levels=256)
    x = (torch.randint(0, 256, (8, 3, 4, 4)) / 255.0,)
    batches = [{"x": x[0]}]
    net = {"kind": "mlp", "hidden": [16]}
    for likelihood, has_bpd in ((DiscretizedLogistic(), True), (Gaussian(sigma=0.1), False)):
        likelihood.check_data(colour, "toy")
        model = build_model("vanilla", {"latent_dim": 2, "net": net}, colour, likelihood)
        report = evaluate(model, batches, iw_k=4, iw_chunk=2)
        if has_bpd:
            assert report["bits_per_dim"] == pytest.approx(-report["elbo_nats"] / (48 * math.log(2)))
            assert report["iw_bits_per_dim"] > 0
        else:
            assert report["bits_per_dim"] is None and "discretized_logistic" in report["bits_per_dim_note"]
            assert "iw_bits_per_dim" not in report
