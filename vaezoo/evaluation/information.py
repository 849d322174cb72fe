"""The one mutual-information estimator between latent codes and ground-truth factors.

disentanglement_lib's protocol (Locatello et al. 2019), used by MIG (:mod:`vaezoo.evaluation.mig`) and
by the factor-traversal picture (:mod:`vaezoo.visualize.factor_traversals`) alike: each code column is
cut into ``num_bins`` equal-width bins over its range, each factor column is taken as its classes, and
the discrete MI is computed in nats.
"""

from __future__ import annotations

import numpy as np

#: disentanglement_lib's default number of equal-width bins per code.
NUM_BINS = 20


def histogram_discretize(codes: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """Each code column into ``num_bins`` equal-width bins over its range: int [n, D]."""
    codes = np.asarray(codes, dtype=np.float64)
    out = np.zeros(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        out[:, i] = np.digitize(codes[:, i], np.histogram(codes[:, i], num_bins)[1][:-1])
    return out


def discrete_mutual_information(binned_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Discrete MI [D, F] in nats between integer code columns and factor columns (classes)."""
    from sklearn.metrics import mutual_info_score

    return np.array([[mutual_info_score(f, c) for f in factors.T] for c in binned_codes.T])


def mutual_information(codes: np.ndarray, factors: np.ndarray, num_bins: int = NUM_BINS) -> np.ndarray:
    """MI [D, F] in nats between continuous codes [n, D] (binned) and discrete factors [n, F]."""
    codes, factors = np.asarray(codes), np.asarray(factors).reshape(len(codes), -1)
    return discrete_mutual_information(histogram_discretize(codes, num_bins), factors)


def factor_entropy(factors: np.ndarray) -> np.ndarray:
    """Entropy [F] in nats of each factor column (its MI with itself)."""
    from sklearn.metrics import mutual_info_score

    return np.array([mutual_info_score(f, f) for f in np.asarray(factors).T])
