"""β-VAE score (Higgins et al. 2017), disentanglement_lib's protocol: each point fixes one random factor
across ``batch_size`` pairs of observations; its feature is the mean absolute difference of the pairs'
representations, its label the fixed factor; a logistic regression predicts the label, and the score
is its accuracy on held-out points."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from vaezoo.evaluation.factor_sampling import ground_truth_of, represent, rng_for
from vaezoo.evaluation.registry import MetricContext, register_metric
from vaezoo.evaluation.reported import Reported


def beta_vae_points(context: MetricContext, n: int, batch_size: int, rng: np.random.Generator):
    """Features [n, D] and fixed-factor labels [n]; all pairs are encoded in one batched pass."""
    truth = ground_truth_of(context)
    labels = rng.integers(0, truth.num_factors, n)
    first = truth.sample_factors(n * batch_size, rng)
    second = truth.sample_factors(n * batch_size, rng)
    rows = np.repeat(labels, batch_size)
    second[np.arange(len(rows)), rows] = first[np.arange(len(rows)), rows]
    diff = np.abs(represent(context, first, rng) - represent(context, second, rng))
    return diff.reshape(n, batch_size, -1).mean(1), labels


@register_metric(
    "beta_vae_score",
    needs=("factors",),
    per_representation=True,
    encodes=lambda s: 2 * s["batch_size"] * (s["num_train"] + s["num_eval"]),
    reports=[
        Reported(
            "eval_accuracy",
            "higher",
            "fraction",
            "held-out accuracy of the linear classifier of the fixed factor",
        ),
        Reported(
            "train_accuracy",
            "higher",
            "fraction",
            "training accuracy of the linear classifier of the fixed factor",
        ),
    ],
    batch_size=64,
    num_train=10000,
    num_eval=5000,
)
def beta_vae_score(
    context: MetricContext, batch_size: int, num_train: int, num_eval: int
) -> dict[str, float]:
    """β-VAE score (Higgins et al. 2017): accuracy of a linear classifier naming the factor held fixed."""
    rng = rng_for(context, "beta_vae_score")
    train_x, train_y = beta_vae_points(context, num_train, batch_size, rng)
    eval_x, eval_y = beta_vae_points(context, num_eval, batch_size, rng)
    model = LogisticRegression(max_iter=1000, random_state=0).fit(train_x, train_y)
    return {
        "eval_accuracy": float(model.score(eval_x, eval_y)),
        "train_accuracy": float(model.score(train_x, train_y)),
    }
