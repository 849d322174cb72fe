"""The VampPrior (Tomczak & Welling 2018) as ``model.prior=vamp`` of vanilla and beta_vae: known answers for
the mixture density, the one-pseudo-input case (a Gaussian prior at q(z|u)), the KL estimate, sampling,
the importance weights, and a tiny CLI run that reports the importance-weighted bound."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch.distributions import Normal

from tests.conftest import TINY, run_cli
from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.likelihoods import Bernoulli
from vaezoo.models import build_model
from vaezoo.models.gaussian import gaussian_kl_two, gaussian_log_prob, mixture_log_prob

DIGITS = DataInfo("digits", (1, 8, 8), 2, 10)
NET = {"kind": "mlp", "hidden": [32], "act": "relu"}


def vamp_model(components: int, name: str = "vanilla", latent_dim: int = 3):
    torch.manual_seed(0)
    params = {"latent_dim": latent_dim, "net": NET, "prior": "vamp", "vamp_components": components}
    return build_model(name, params, DIGITS, Bernoulli())


def data_mean_model():
    """A VampPrior with one pseudo-input at the mean of a batch of digit-like images."""
    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.rand(64, 1, 8, 8, generator=g) * 0.8, generator=g)
    model = vamp_model(1)
    with torch.no_grad():
        model.pseudo_inputs.copy_(x.mean(0, keepdim=True))
    return model, x


def test_mixture_log_prob_is_the_log_mean_of_the_component_densities():
    g = torch.Generator().manual_seed(0)
    mu, logvar, z = (
        torch.randn(7, 4, generator=g),
        torch.randn(7, 4, generator=g),
        torch.randn(50, 4, generator=g),
    )
    brute = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z.unsqueeze(1)).sum(-1)  # [50, 7]
    expected = torch.logsumexp(brute, 1) - math.log(7)
    assert torch.allclose(mixture_log_prob(z, mu, logvar), expected, atol=1e-5)
    # chunked evaluation gives the same numbers
    assert torch.allclose(mixture_log_prob(z, mu, logvar, max_elements=30), expected, atol=1e-5)


def test_declarations_follow_the_prior():
    model = vamp_model(5)
    assert not model.standard_normal_prior and not model.analytic_kl and model.importance_weighted
    plain = build_model("vanilla", {"latent_dim": 3, "net": NET}, DIGITS, Bernoulli())
    assert plain.standard_normal_prior and plain.analytic_kl and plain.pseudo_inputs is None
    beta = vamp_model(5, "beta_vae")
    assert beta.pseudo_inputs.shape == (5, 1, 8, 8) and not beta.analytic_kl


def test_one_pseudo_input_at_the_data_mean_is_a_gaussian_prior_at_its_posterior():
    model, _ = data_mean_model()
    mean = model.pseudo_inputs.detach()
    with torch.no_grad():
        mu_p, logvar_p = model.posterior_params(mean)
        z = torch.randn(200, 3) * 2
        expected = gaussian_log_prob(z, mu_p.expand_as(z), logvar_p.expand_as(z))
        assert torch.allclose(model.log_prior(z), expected, atol=1e-4)
        # sampling: the moments of q(z|mean)
        torch.manual_seed(0)
        samples = model.prior_latents(40000)
    assert torch.allclose(samples.mean(0), mu_p[0], atol=0.03 * float(logvar_p.exp().sqrt().max()) + 0.01)
    assert torch.allclose(samples.var(0), logvar_p[0].exp(), rtol=0.05)


def test_one_pseudo_input_kl_estimate_averages_to_the_closed_form_per_dimension():
    model, x = data_mean_model()
    with torch.no_grad():
        mu_p, logvar_p = model.posterior_params(model.pseudo_inputs)
        mu_q, logvar_q = model.posterior_params(x[:4])
        closed = gaussian_kl_two(mu_q, logvar_q, mu_p.expand_as(mu_q), logvar_p.expand_as(mu_q))
        torch.manual_seed(0)
        estimates = torch.stack([model.kl_per_dim(x[:4]) for _ in range(3000)])
    assert estimates.shape == (3000, 4, 3)
    assert (estimates < 0).any()  # an estimate, not a closed form
    assert torch.allclose(estimates.mean(0), closed, atol=0.05 + 0.05 * float(closed.abs().max()))


def test_elbo_kl_is_log_q_minus_log_prior_at_the_decoded_sample_and_reaches_the_pseudo_inputs():
    model = vamp_model(4)
    x = torch.bernoulli(torch.full((6, 1, 8, 8), 0.3), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(3)
    terms = model.elbo_terms(x)
    torch.manual_seed(3)
    mu, logvar = model.posterior_params(x)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    expected = gaussian_log_prob(z, mu, logvar) - model.log_prior(z)
    assert torch.allclose(terms.kl_total, expected, atol=1e-4)
    (-terms.elbo.mean()).backward()
    assert model.pseudo_inputs.grad is not None and float(model.pseudo_inputs.grad.abs().sum()) > 0


def test_importance_weights_equal_those_of_the_shifted_gaussian_prior():
    model, x = data_mean_model()
    with torch.no_grad():
        mu_p, logvar_p = model.posterior_params(model.pseudo_inputs)
    shifted = build_model("vanilla", {"latent_dim": 3, "net": NET}, DIGITS, Bernoulli())
    state = {k: v for k, v in model.state_dict().items() if k != "pseudo_inputs"}
    shifted.load_state_dict(state)
    shifted.prior_params = lambda y: (mu_p.expand(len(x), -1), logvar_p.expand(len(x), -1))
    with torch.no_grad():
        torch.manual_seed(5)
        vamp = model.log_importance_weights(x, k=6)
        torch.manual_seed(5)
        gauss = shifted.log_importance_weights(x, k=6)
    assert vamp.shape == (6, len(x))
    assert torch.allclose(vamp, gauss, atol=1e-3)


def test_vamp_sampling_picks_components():
    model = vamp_model(3)
    with torch.no_grad():  # three well-separated, narrow components
        mu = torch.tensor([[-10.0, 0, 0], [0, 10, 0], [0, 0, 10]])
        model.vamp_mixture = lambda: (mu, torch.full((3, 3), -6.0))
        z = model.prior_latents(3000)
    nearest = torch.cdist(z, mu).argmin(1)
    shares = torch.bincount(nearest, minlength=3) / 3000
    assert torch.allclose(shares, torch.full((3,), 1 / 3), atol=0.04)
    assert float(torch.cdist(z, mu).min(1).values.max()) < 0.5


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"prior": "flow"}, r"model\.prior='flow' must be one of standard_normal, vamp"),
        ({"prior": "vamp", "vamp_components": 0}, r"model\.vamp_components must be an integer >= 1"),
    ],
)
def test_bad_prior_settings_are_one_line_config_errors(params, match):
    with pytest.raises(ConfigError, match=match):
        build_model("vanilla", {"latent_dim": 3, "net": NET, **params}, DIGITS, Bernoulli())


def test_vamp_prior_trains_through_the_cli_and_reports_the_iw_bound(tmp_path: Path):
    args = ["model=vanilla", "model.prior=vamp", "model.vamp_components=8", *TINY, "trainer.max_epochs=1"]
    proc = run_cli([*args, "logger=csv"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = (tmp_path / "runs").rglob("results.json")
    test = json.loads(results.read_text())["test"]
    assert math.isfinite(test["iw_bound_nats"]) and math.isfinite(test["elbo_nats"])
    assert test["iw_bound_nats"] >= test["elbo_nats"] - 1.0  # IW bound (k=8) is not below the ELBO (noise)
