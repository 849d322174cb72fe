"""Mutual Information Gap (Chen et al. 2018), with disentanglement_lib's protocol and defaults:
codes discretised into 20 equal-width bins, MI against the factor classes, gap between the two most
informative codes normalised by the factor's entropy, averaged over factors."""

from __future__ import annotations

import numpy as np

from vaezoo.evaluation.factor_sampling import codes_and_factors, rng_for
from vaezoo.evaluation.information import NUM_BINS, factor_entropy, mutual_information
from vaezoo.evaluation.registry import MetricContext, register_metric
from vaezoo.evaluation.reported import Reported


def mig_score(codes: np.ndarray, factors: np.ndarray, num_bins: int = NUM_BINS) -> dict[str, float]:
    """MIG of codes [n, D] against discrete factors [n, F], with the per-factor gaps."""
    mi = mutual_information(codes, factors, num_bins)
    entropy = factor_entropy(factors)
    if mi.shape[0] < 2:
        raise ValueError("MIG needs at least two latent dimensions")
    top = np.sort(mi, axis=0)[::-1]
    gaps = (top[0] - top[1]) / entropy
    return {"mig": float(gaps.mean()), **{f"gap_{i}": float(g) for i, g in enumerate(gaps)}}


@register_metric(
    "mig",
    needs=("factors",),
    per_representation=True,
    encodes=lambda s: s["num_train"],
    reports=[
        Reported("mig", "higher", "fraction of H(factor)", "mutual information gap, mean over factors"),
        Reported("gap_*", "higher", "fraction of H(factor)", "mutual information gap of one factor"),
    ],
    num_train=10000,
    num_bins=NUM_BINS,
)
def mig(context: MetricContext, num_train: int, num_bins: int) -> dict[str, float]:
    """Mutual Information Gap (Chen et al. 2018): MI gap of the two best codes / H(factor)."""
    codes, factors = codes_and_factors(context, num_train, rng_for(context, "mig"))
    scores = mig_score(codes, factors, num_bins)
    names = context.ground_truth.names if context.ground_truth else ()
    return {"mig": scores["mig"]} | {f"gap_{name}": scores[f"gap_{i}"] for i, name in enumerate(names)}
