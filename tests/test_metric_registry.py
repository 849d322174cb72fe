"""The metric registry: names, needs, settings, skips with reasons, one-line errors."""

from __future__ import annotations

import pytest
import torch

from vaezoo.builder import model_params
from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.evaluation.metrics import importance_weighted_bound
from vaezoo.evaluation.registry import METRICS, NEEDS, MetricContext, load_metrics, run_metrics
from vaezoo.likelihoods import Bernoulli
from vaezoo.models import build_model

DIGITS = DataInfo("digits", (1, 8, 8), 2, 10)


def context(compose_cfg, info: DataInfo = DIGITS) -> MetricContext:
    cfg = compose_cfg("model=vanilla", "dataset=digits")
    torch.manual_seed(0)
    model = build_model("vanilla", model_params(cfg.model), info, Bernoulli()).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.rand(32, 1, 8, 8, generator=g), generator=g)
    batches = [{"x": x[:16], "y": torch.arange(16) % 10}, {"x": x[16:], "y": torch.arange(16) % 10}]
    return MetricContext(model=model, batches=batches, info=info, dataset=info.name)


def test_every_registered_metric_declares_known_needs_and_a_docstring():
    load_metrics()
    assert {
        "iw_bound",
        "kl_per_dim",
        "active_units",
        "mig",
        "dci",
        "sap",
        "beta_vae_score",
        "factor_vae_score",
    } <= set(METRICS)
    for metric in METRICS.values():
        assert set(metric.needs) <= set(NEEDS) and metric.doc, metric.name


def test_run_metrics_records_values_settings_seconds_and_skips_with_reasons(compose_cfg):
    out = run_metrics(
        ["kl_per_dim", "iw_bound", "mig"], context(compose_cfg), {"iw_bound": {"k": 4, "chunk": 2}}
    )
    assert out["iw_bound"]["settings"] == {"k": 4, "chunk": 2} and out["iw_bound"]["seconds"] >= 0
    kl = out["kl_per_dim"]["values"]
    assert kl["total"] == pytest.approx(sum(kl["per_dim"]), rel=1e-5)
    assert "no ground-truth factors" in out["mig"]["skipped"]


def test_unknown_metric_setting_and_inapplicable_metric_run_directly_are_one_line_errors(compose_cfg):
    ctx = context(compose_cfg)
    with pytest.raises(ConfigError, match=r"unknown metric 'nope'.*registered metrics"):
        run_metrics(["nope"], ctx)
    with pytest.raises(ConfigError, match=r"eval\.settings.iw_bound has unknown keys kk"):
        run_metrics(["iw_bound"], ctx, {"iw_bound": {"kk": 3}})
    with pytest.raises(ConfigError, match=r"metric mig cannot run: .*no ground-truth factors"):
        run_metrics(["mig"], ctx, strict=True)


def test_iw_bound_with_k_1_is_the_single_sample_elbo_estimate_with_the_same_draws(compose_cfg):
    """IW_1 = log p(x|z) + log p(z) - log q(z|x) at the ELBO's own z; its mean over draws is the ELBO."""
    ctx = context(compose_cfg)
    model, x = ctx.model, torch.cat([b["x"] for b in ctx.batches])
    with torch.no_grad():
        torch.manual_seed(5)
        bound = importance_weighted_bound(model.log_importance_weights, [{"x": x}], k=1)
        torch.manual_seed(5)
        terms = model.elbo_terms(x)  # draws the same eps for the same z
        mu, logvar = model.posterior_params(x, None)
        torch.manual_seed(5)
        eps = torch.randn_like(mu)
        z = mu + eps * torch.exp(0.5 * logvar)
        log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
        log_qz = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(1)
        assert torch.allclose(bound, terms.log_px_z + log_pz - log_qz, atol=1e-4)
        # Averaged over draws, IW_1 is the ELBO (analytic KL) up to Monte Carlo error.
        draws = torch.stack(
            [importance_weighted_bound(model.log_importance_weights, [{"x": x}], 1) for _ in range(400)]
        )
        assert float(draws.mean()) == pytest.approx(float(terms.elbo.mean()), abs=0.05)
