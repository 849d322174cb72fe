"""FactorVAE score (Kim & Mnih 2018), disentanglement_lib's protocol: codes are scaled by their
standard deviation over the data; each vote fixes one random factor over ``batch_size`` observations
and names the code of least scaled variance; a majority-vote classifier maps codes to factors, and the
score is its accuracy on held-out votes. Codes whose standard deviation over the data is below
``prune_threshold`` (0.05, disentanglement_lib's study setting ``prune_dims.threshold``) are collapsed to
the prior and do not vote; if none is left, the score is 0."""

from __future__ import annotations

import numpy as np

from vaezoo.evaluation.factor_sampling import codes_and_factors, ground_truth_of, represent, rng_for
from vaezoo.evaluation.registry import MetricContext, register_metric
from vaezoo.evaluation.reported import Reported


def votes(
    context: MetricContext,
    n: int,
    batch_size: int,
    scale: np.ndarray,
    active: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Vote counts [D, F]: how often code d had the least scaled variance when factor f was fixed."""
    truth = ground_truth_of(context)
    counts = np.zeros((len(scale), truth.num_factors), dtype=np.int64)
    factors = rng.integers(0, truth.num_factors, n)
    classes = truth.sample_factors(n * batch_size, rng).reshape(n, batch_size, -1)
    classes[np.arange(n), :, factors] = classes[np.arange(n), 0, factors][:, None]
    codes = represent(context, classes.reshape(n * batch_size, -1), rng).reshape(n, batch_size, -1)
    local = codes.var(axis=1, ddof=1)
    ratio = np.where(active, local / np.where(active, scale, 1), np.inf)
    np.add.at(counts, (ratio.argmin(1), factors), 1)
    return counts


def factor_vae_from_votes(train: np.ndarray, test: np.ndarray) -> tuple[float, float]:
    classifier = train.argmax(1)  # each code's majority factor
    train_acc = train.max(1).sum() / train.sum()
    test_acc = test[np.arange(len(classifier)), classifier].sum() / test.sum()
    return float(train_acc), float(test_acc)


@register_metric(
    "factor_vae_score",
    needs=("factors",),
    per_representation=True,
    encodes=lambda s: s["num_variance_estimate"] + s["batch_size"] * (s["num_train"] + s["num_eval"]),
    reports=[
        Reported(
            "eval_accuracy", "higher", "fraction", "held-out votes whose fixed factor the majority vote names"
        ),
        Reported(
            "train_accuracy",
            "higher",
            "fraction",
            "training votes whose fixed factor the majority vote names",
        ),
        Reported(
            "active_codes",
            None,
            "count",
            "codes whose standard deviation reaches prune_threshold: the voters",
        ),
    ],
    batch_size=64,
    num_train=10000,
    num_eval=5000,
    num_variance_estimate=10000,
    prune_threshold=0.05,
)
def factor_vae_score(
    context: MetricContext,
    batch_size: int,
    num_train: int,
    num_eval: int,
    num_variance_estimate: int,
    prune_threshold: float,
) -> dict[str, float]:
    """FactorVAE score (Kim & Mnih 2018): majority vote naming the fixed factor by its stillest code."""
    rng = rng_for(context, "factor_vae_score")
    codes, _ = codes_and_factors(context, num_variance_estimate, rng)
    scale = codes.var(axis=0, ddof=1)
    active = (np.sqrt(scale) >= prune_threshold) & (scale > 0)
    if not active.any():
        return {"eval_accuracy": 0.0, "train_accuracy": 0.0, "active_codes": 0}
    train_acc, eval_acc = factor_vae_from_votes(
        votes(context, num_train, batch_size, scale, active, rng),
        votes(context, num_eval, batch_size, scale, active, rng),
    )
    return {"eval_accuracy": eval_acc, "train_accuracy": train_acc, "active_codes": int(active.sum())}
