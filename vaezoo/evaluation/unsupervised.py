"""Unsupervised scores of a representation (disentanglement_lib's ``unsupervised_metrics``, reported by
Locatello et al. 2019): how far the codes are from independent, without ground-truth factors.

All three read the same ``num_train`` codes: drawn from the ground-truth factors where the data has
them (as disentanglement_lib), else the first ``num_train`` test examples. Each is lower for codes
closer to independent.

- Gaussian total correlation: KL between a Gaussian with the codes' covariance Σ and the product of its
  marginals, ½ (Σ_d log Σ_dd − log det Σ), in nats;
- Gaussian Wasserstein correlation: the squared 2-Wasserstein distance between those two Gaussians,
  2 tr Σ − 2 tr (Σ diag(Σ))^½ (squared code units), and that divided by tr Σ;
- mutual information score: the mean discrete MI between two different codes (each in 20 equal-width
  bins, as MIG's), in nats.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from vaezoo.evaluation.factor_sampling import codes_and_factors, encode, rng_for
from vaezoo.evaluation.information import NUM_BINS, discrete_mutual_information, histogram_discretize
from vaezoo.evaluation.registry import MetricContext, register_metric
from vaezoo.evaluation.reported import Reported


def unsupervised_codes(context: MetricContext, num_train: int) -> np.ndarray:
    """The codes [n, D] the three scores share (computed once per representation and size)."""
    key = ("unsupervised_codes", context.representation, num_train)
    if key not in context.extras:
        if context.ground_truth is not None:
            codes, _ = codes_and_factors(context, num_train, rng_for(context, "unsupervised"))
        else:
            parts, taken = [], 0
            for batch in context.batches:
                if taken >= num_train:
                    break
                parts.append(encode(context, batch["x"][: num_train - taken]))
                taken += len(parts[-1])
            codes = np.concatenate(parts)
        context.extras[key] = codes
    return context.extras[key]


def code_covariance(codes: np.ndarray) -> np.ndarray:
    if codes.shape[0] < 2 or codes.shape[1] < 2:
        raise ValueError(f"the unsupervised scores need >= 2 codes of >= 2 examples, got {codes.shape}")
    return np.cov(codes, rowvar=False)


def gaussian_total_correlation_of(cov: np.ndarray) -> float:
    """KL(N(0, Σ) ‖ N(0, diag Σ)) in nats."""
    return float(0.5 * (np.log(np.diag(cov)).sum() - np.linalg.slogdet(cov)[1]))


def wasserstein_correlation_of(cov: np.ndarray) -> float:
    """Squared 2-Wasserstein distance between N(0, Σ) and N(0, diag Σ)."""
    root = scipy.linalg.sqrtm(cov * np.diag(cov)[:, None])
    return float(np.real(2 * np.trace(cov) - 2 * np.trace(root)))


def mutual_info_score_of(codes: np.ndarray, num_bins: int = NUM_BINS) -> float:
    """Mean discrete MI (nats) between two different codes."""
    binned = histogram_discretize(codes, num_bins)
    mi = discrete_mutual_information(binned, binned)
    d = mi.shape[0]
    return float((mi.sum() - np.trace(mi)) / (d * d - d))


@register_metric(
    "gaussian_total_correlation",
    per_representation=True,
    encodes=lambda s: s["num_train"],
    reports=[
        Reported("value", "lower", "nats", "total correlation of a Gaussian with the codes' covariance")
    ],
    num_train=10000,
)
def gaussian_total_correlation(context: MetricContext, num_train: int) -> float:
    """Gaussian total correlation of the codes (disentanglement_lib's unsupervised score)."""
    return gaussian_total_correlation_of(code_covariance(unsupervised_codes(context, num_train)))


@register_metric(
    "wasserstein_correlation",
    per_representation=True,
    encodes=lambda s: s["num_train"],
    reports=[
        Reported(
            "wasserstein_correlation",
            "lower",
            "squared code units",
            "squared 2-Wasserstein distance from the codes' Gaussian to the product of its marginals",
        ),
        Reported(
            "normalised", "lower", "fraction of total code variance", "the distance divided by trace(Σ)"
        ),
    ],
    num_train=10000,
)
def wasserstein_correlation(context: MetricContext, num_train: int) -> dict[str, float]:
    """Gaussian Wasserstein correlation of the codes (disentanglement_lib's unsupervised score)."""
    cov = code_covariance(unsupervised_codes(context, num_train))
    distance = wasserstein_correlation_of(cov)
    return {"wasserstein_correlation": distance, "normalised": distance / float(np.trace(cov))}


@register_metric(
    "mutual_info_score",
    per_representation=True,
    encodes=lambda s: s["num_train"],
    reports=[Reported("value", "lower", "nats", "mean mutual information between two different codes")],
    num_train=10000,
    num_bins=NUM_BINS,
)
def mutual_info_score(context: MetricContext, num_train: int, num_bins: int) -> float:
    """Mean mutual information between codes (disentanglement_lib's unsupervised score)."""
    codes = unsupervised_codes(context, num_train)
    code_covariance(codes)  # the same shape check as the other two
    return mutual_info_score_of(codes, num_bins)
