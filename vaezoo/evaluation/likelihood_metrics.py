"""Likelihood metrics as registry entries: importance-weighted bound, KL per latent dimension, active units.

The end-of-run ``test`` section of results.json (vaezoo.evaluation.held_out) already holds the IW bound at
``eval.iw_k`` and the active units; these entries let the evaluation stage recompute them with other
settings (``iw_bound`` at k = 5000, the Burda et al. 2015 protocol) without a second implementation.
"""

from __future__ import annotations

import math
from typing import Any

from vaezoo.evaluation.metrics import active_units, importance_weighted_bound
from vaezoo.evaluation.registry import MetricContext, register_metric
from vaezoo.evaluation.reported import Reported


@register_metric(
    "iw_bound",
    needs=("importance_weights",),
    reports=[
        Reported("nats", "higher", "nats per example", "importance-weighted lower bound on log p(x)"),
        Reported("bits_per_dim", "lower", "bits/dim", "the bound as bits per pixel value (discrete data)"),
    ],
    k=5000,
    chunk=100,
)
def iw_bound(context: MetricContext, k: int, chunk: int) -> dict[str, Any]:
    """Mean importance-weighted bound log p(x) >= IW_k in nats (and bits/dim for discrete data)."""
    bound = float(
        importance_weighted_bound(context.model.log_importance_weights, context.batches, k, chunk)
        .double()
        .mean()
    )
    out: dict[str, Any] = {"nats": bound}
    if context.model.likelihood.discrete:
        out["bits_per_dim"] = -bound / (context.info.num_dims * math.log(2))
    return out


@register_metric(
    "kl_per_dim",
    reports=[
        Reported("per_dim", None, "nats", "KL(q(z_d|x) || p(z_d)) per latent dimension (a list)"),
        Reported("total", None, "nats", "KL summed over the latent dimensions (the rate)"),
    ],
)
def kl_per_dim(context: MetricContext) -> dict[str, Any]:
    """Mean KL(q(z_d|x) || p(z_d)) per flat latent dimension over the test set, in nats."""
    total, n = None, 0
    for batch in context.batches:
        kl = context.model.kl_per_dim(batch["x"], batch.get("y")).double().sum(0)
        total = kl if total is None else total + kl
        n += batch["x"].shape[0]
    assert total is not None
    per_dim = (total / n).float()
    return {"per_dim": per_dim.tolist(), "total": float(per_dim.sum())}


@register_metric(
    "active_units",
    reports=[
        Reported("count", "higher", "count", "latent units whose posterior mean varies across inputs"),
        Reported("units", None, "count", "latent units in all"),
    ],
    threshold=0.01,
)
def active_units_metric(context: MetricContext, threshold: float) -> dict[str, Any]:
    """Burda et al. (2015): units whose posterior mean varies across inputs by more than ``threshold``."""
    count, variances = active_units(context.model.representation, context.batches, threshold)
    return {"count": count, "units": int(variances.numel())}
