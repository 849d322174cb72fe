"""Seeded synthetic representations of a synthetic ground truth, for the cross-check against
disentanglement_lib's metric code (tests/test_disentanglement_reference.py).

NumPy only, so the one-off script that ran disentanglement_lib outside the project imported this very
module: both sides build their codes with the same code and the same seeds. An observation is its
factor-class vector; a representation maps it to codes, with noise from the representation's own
generator (so the two libraries draw different noise, and agree within sampling noise only).
"""

from __future__ import annotations

import numpy as np

#: Classes per factor of the synthetic ground truth (five factors).
FACTOR_SIZES = (3, 5, 4, 6, 4)
#: The representations, in the table's order.
KINDS = (
    "truth",  # the factors themselves, scaled to [0, 1]
    "rotated",  # a fixed rotation of them: every code mixes every factor
    "noisy_0.05",  # the factors plus Gaussian noise of standard deviation 0.05, 0.2 and 0.5
    "noisy_0.2",
    "noisy_0.5",
    "two_of_five",  # factors 0 and 1, then three codes of pure noise
    "noise",  # five codes of pure noise
    "duplicated",  # each factor twice (ten codes)
    "scaled_0.01",  # the factors times 0.01: standard deviation below FactorVAE's pruning threshold
)
#: The cross-check's sample sizes: the same on both sides (smaller than the papers', to keep the test cheap).
SIZES = {
    "mig": {"num_train": 2000},
    "sap": {"num_train": 1000, "num_test": 500},
    "dci": {"num_train": 1000, "num_test": 500},
    "beta_vae_score": {"batch_size": 16, "num_train": 500, "num_eval": 300},
    "factor_vae_score": {"batch_size": 16, "num_train": 500, "num_eval": 300, "num_variance_estimate": 1000},
    "unsupervised": {"num_train": 2000},
}


def rotation() -> np.ndarray:
    """A fixed 5x5 orthogonal matrix (QR of a seeded Gaussian matrix)."""
    q, r = np.linalg.qr(np.random.default_rng(20).standard_normal((5, 5)))
    return q * np.sign(np.diag(r))


def codes(kind: str, classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Codes [n, D] of the representation ``kind`` for factor classes [n, 5]; noise from ``rng``."""
    f = np.asarray(classes, dtype=np.float64) / (np.asarray(FACTOR_SIZES) - 1)
    n = len(f)
    if kind == "truth":
        return f
    if kind == "rotated":
        return (f - 0.5) @ rotation()
    if kind.startswith("noisy_"):
        return f + float(kind.split("_")[1]) * rng.standard_normal(f.shape)
    if kind == "two_of_five":
        return np.concatenate([f[:, :2], 0.3 * rng.standard_normal((n, 3))], axis=1)
    if kind == "noise":
        return 0.3 * rng.standard_normal((n, 5))
    if kind == "duplicated":
        return np.concatenate([f, f], axis=1)
    if kind == "scaled_0.01":
        return 0.01 * f
    raise ValueError(f"unknown representation {kind!r}; known: {KINDS}")
