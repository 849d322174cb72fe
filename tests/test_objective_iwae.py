"""The importance-weighted objective (objective.k): k=1 is the ELBO, the bound is tighter, gradients right."""

from __future__ import annotations

import math

import pytest
import torch

from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.likelihoods import Bernoulli
from vaezoo.models import build_model
from vaezoo.objective import CapacityAnnealing, ConstantBeta, FreeBits, LinearWarmup, Objective, iwae_bound

DIGITS = DataInfo("digits", (1, 8, 8), 2, 10)


def vanilla(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(
        "vanilla", {"latent_dim": 4, "net": {"kind": "mlp", "hidden": [32]}}, DIGITS, Bernoulli()
    )


def batch(n: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.bernoulli(torch.rand(n, 1, 8, 8, generator=g), generator=g)


def test_k1_objective_is_exactly_the_elbo():
    model, x = vanilla(), batch()
    torch.manual_seed(3)
    out = Objective(k=1)(model, x, None, step=0)
    torch.manual_seed(3)
    elbo = model.elbo_terms(x).elbo
    assert torch.equal(out.loss, -elbo.mean())
    lw = torch.randn(1, 7)
    assert torch.equal(iwae_bound(lw), lw[0])  # one sample: the bound is that sample's weight


def test_iwae_bound_is_at_least_the_elbo():
    model, x = vanilla(), batch(64)
    torch.manual_seed(0)
    with torch.no_grad():
        lw = model.log_importance_weights(x, None, 50)
        bound = iwae_bound(lw)
        elbo = torch.stack([model.elbo_terms(x).elbo for _ in range(50)]).mean(0)
    assert bool((bound >= lw.mean(0) - 1e-5).all())  # log-mean-exp ≥ mean, per example
    assert float(bound.mean()) > float(elbo.mean())  # and above the analytic-KL ELBO on average


def test_iwae_gradient_weights_each_sample_by_its_normalised_weight():
    model, x = vanilla(), batch(8)
    params = [p for p in model.parameters() if p.requires_grad]
    torch.manual_seed(5)
    lw = model.log_importance_weights(x, None, 10)
    grads = torch.autograd.grad(-iwae_bound(lw).sum(), params, retain_graph=True)
    weights = torch.softmax(lw, dim=0).detach()
    expected = torch.autograd.grad(-(weights * lw).sum(), params, retain_graph=True)
    for g, e in zip(grads, expected, strict=True):
        assert torch.allclose(g, e, atol=1e-4, rtol=1e-4)
    # the known bug, weights left attached to the graph, optimises something else
    buggy = torch.autograd.grad(-(torch.softmax(lw, dim=0) * lw).sum(), params)
    assert any(not torch.allclose(g, b, atol=1e-4, rtol=1e-4) for g, b in zip(grads, buggy, strict=True))


def test_iwae_objective_trains_on_the_bound_and_logs_it():
    model, x = vanilla(), batch()
    objective = Objective(k=5)
    objective.check_model(model, "vanilla")
    out = objective(model, x, None, step=0)
    assert torch.equal(out.loss, -out.metrics["iwae_bound"])
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert "elbo" in out.metrics and "kl" in out.metrics


@pytest.mark.parametrize(
    "kl", [ConstantBeta(beta=4.0), FreeBits(lambda_=0.5), LinearWarmup(warmup_steps=10), CapacityAnnealing()]
)
def test_iwae_rejects_kl_schedules_it_cannot_apply(kl):
    with pytest.raises(ConfigError, match=r"objective\.k=5 .*kl=constant beta=1"):
        Objective(kl=kl, k=5)


def test_iwae_rejects_models_without_a_stochastic_posterior_and_bad_k():
    vq = build_model("vqvae", {"num_codes": 8, "code_dim": 4, "channels": [8, 8]}, DIGITS, Bernoulli())
    with pytest.raises(ConfigError, match="model=vqvae has none"):
        Objective(k=2).check_model(vq, "vqvae")
    Objective(k=1).check_model(vq, "vqvae")  # k=1 is the plain ELBO: fine for every model
    for name in ("hvae", "cvae", "vanilla", "beta_vae"):
        Objective(k=2).check_model(build_model(name, {}, DIGITS, Bernoulli()), name)
    for bad in (0, -1, 2.5):
        with pytest.raises(ConfigError, match=r"objective\.k must be a positive integer"):
            Objective(k=bad)


def test_free_bits_per_group_floors_each_layer_total():
    kl = {"z1": torch.full((4, 3), 0.01), "z2": torch.full((4, 2), 2.0)}
    per_group = FreeBits(lambda_=1.0, per="group").loss(kl, step=0)
    assert math.isclose(float(per_group), 1.0 + 4.0)  # z1's 0.03 floored to 1; z2's 4 kept
    per_dim = FreeBits(lambda_=1.0, per="dim").loss(kl, step=0)
    assert math.isclose(float(per_dim), 3 * 1.0 + 2 * 2.0)
    with pytest.raises(ConfigError, match=r"kl\.per"):
        FreeBits(per="layer")


def test_without_metrics_iwae_skips_the_logging_pass_but_keeps_the_loss():
    torch.manual_seed(0)
    model = build_model(
        "vanilla", {"latent_dim": 3, "net": {"kind": "mlp", "hidden": [16]}}, DIGITS, Bernoulli()
    )
    x = torch.randint(0, 2, (4, 1, 8, 8)).float()
    objective = Objective(k=5)
    calls = []
    original = model.elbo_terms
    model.elbo_terms = lambda *a: calls.append(1) or original(*a)
    torch.manual_seed(1)
    quiet = objective(model, x, None, step=0, with_metrics=False)
    torch.manual_seed(1)
    logged = objective(model, x, None, step=0)
    assert calls == [1] and quiet.metrics == {} and quiet.terms is None
    assert torch.equal(quiet.loss, logged.loss)
