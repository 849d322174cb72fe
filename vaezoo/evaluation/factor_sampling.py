"""Shared sampling for the disentanglement metrics (as disentanglement_lib's utils).

Representations are the model's flat posterior means (``representation``), or one posterior sample
each (``sample_representation``) when the context's representation is "sampled", of observations drawn
from the ground-truth factors, computed in chunks so that memory stays bounded. The observations
encoded and the seconds taken are counted in ``context.extras["encoded"]`` (the progress lines'
expected cost).
"""

from __future__ import annotations

import time

import numpy as np
from torch import Tensor

from vaezoo.evaluation.registry import MetricContext

CHUNK = 1024


def ground_truth_of(context: MetricContext):
    if context.ground_truth is None:  # run_metrics checks "factors" first; this guards direct calls
        raise ValueError("this metric needs ground-truth factors (context.ground_truth)")
    return context.ground_truth


def encode(context: MetricContext, x: Tensor) -> np.ndarray:
    """The context's representation [B, D] (float64) of observations x, counted in extras["encoded"]."""
    started = time.perf_counter()
    if context.representation == "sampled":
        codes = context.model.sample_representation(x, None)
    else:
        codes = context.model.representation(x, None)
    out = codes.double().cpu().numpy()
    count, seconds = context.extras.get("encoded", (0, 0.0))
    context.extras["encoded"] = (count + len(out), seconds + time.perf_counter() - started)
    return out


def represent(context: MetricContext, classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Representations [n, D] (float64) of observations with factor classes [n, F]."""
    truth = ground_truth_of(context)
    device = context.model.device
    out = []
    for start in range(0, len(classes), CHUNK):
        x = truth.sample_observations_from_factors(classes[start : start + CHUNK], rng).to(device)
        out.append(encode(context, x))
    return np.concatenate(out)


def codes_and_factors(
    context: MetricContext, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """n random points: representations [n, D] and their factor classes [n, F]."""
    classes = ground_truth_of(context).sample_factors(n, rng)
    return represent(context, classes, rng), classes


def rng_for(context: MetricContext, name: str) -> np.random.Generator:
    """A generator seeded by the context's seed and the metric's name (metrics do not share draws)."""
    return np.random.default_rng([context.seed, *name.encode()])


def as_generator_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))
