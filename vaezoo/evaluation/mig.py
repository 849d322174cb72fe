"""Mutual Information Gap (Chen et al. 2018), with disentanglement_lib's protocol and defaults:
codes discretised into 20 equal-width bins, MI against the factor classes, gap between the two most
informative codes normalised by the factor's entropy, averaged over factors."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import mutual_info_score

from vaezoo.evaluation.factor_sampling import codes_and_factors, rng_for
from vaezoo.evaluation.registry import MetricContext, register_metric
from vaezoo.evaluation.reported import Reported


def histogram_discretize(codes: np.ndarray, num_bins: int) -> np.ndarray:
    """Each code column into ``num_bins`` equal-width bins over its range: int [n, D]."""
    out = np.zeros(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        out[:, i] = np.digitize(codes[:, i], np.histogram(codes[:, i], num_bins)[1][:-1])
    return out


def mutual_information(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Discrete MI [D, F] in nats between integer code columns and factor columns."""
    return np.array([[mutual_info_score(f, c) for f in factors.T] for c in codes.T])


def mig_score(codes: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> dict[str, float]:
    mi = mutual_information(histogram_discretize(codes, num_bins), factors)
    entropy = np.array([mutual_info_score(f, f) for f in factors.T])
    if mi.shape[0] < 2:
        raise ValueError("MIG needs at least two latent dimensions")
    top = np.sort(mi, axis=0)[::-1]
    gaps = (top[0] - top[1]) / entropy
    return {"mig": float(gaps.mean()), **{f"gap_{i}": float(g) for i, g in enumerate(gaps)}}


@register_metric(
    "mig",
    needs=("factors",),
    reports=[
        Reported("mig", "higher", "fraction of H(factor)", "mutual information gap, mean over factors"),
        Reported("gap_*", "higher", "fraction of H(factor)", "mutual information gap of one factor"),
    ],
    num_train=10000,
    num_bins=20,
)
def mig(context: MetricContext, num_train: int, num_bins: int) -> dict[str, float]:
    """Mutual Information Gap (Chen et al. 2018): MI gap of the two best codes / H(factor)."""
    codes, factors = codes_and_factors(context, num_train, rng_for(context, "mig"))
    scores = mig_score(codes, factors, num_bins)
    names = context.ground_truth.names if context.ground_truth else ()
    return {"mig": scores["mig"]} | {f"gap_{name}": scores[f"gap_{i}"] for i, name in enumerate(names)}
