"""Fréchet distance between the judge classifier's features of samples and of test images.

Heusel et al. (2017) compare Inception features; here the features are the penultimate layer of
the dataset's small classifier (:mod:`vaezoo.evaluation.classifier`), the usual choice for MNIST-like
data, so the figures compare models on one dataset, not with published Inception FIDs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from vaezoo.evaluation.registry import MetricContext, register_metric
from vaezoo.evaluation.reported import Reported


def frechet_distance(feats_a: Tensor, feats_b: Tensor) -> float:
    """||μ_a − μ_b||² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½) between Gaussians fitted to two feature sets [N, F].

    The matrix square root is taken as (Σ_a^½ Σ_b Σ_a^½)^½, whose trace equals that of (Σ_a Σ_b)^½
    and which is symmetric, so both roots come from eigendecompositions in float64.
    """
    if feats_a.dim() != 2 or feats_b.dim() != 2 or feats_a.shape[1] != feats_b.shape[1]:
        raise ValueError(
            f"feature sets must be [N, F] with the same F, got {tuple(feats_a.shape)}, {tuple(feats_b.shape)}"
        )
    if len(feats_a) < 2 or len(feats_b) < 2:
        raise ValueError("the Fréchet distance needs at least 2 feature vectors per set")
    a, b = feats_a.double(), feats_b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    if cov_a.dim() == 0:  # one feature
        cov_a, cov_b = cov_a.reshape(1, 1), cov_b.reshape(1, 1)
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
    middle = root_a @ cov_b @ root_a
    trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    distance = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_root
    return float(distance.clamp_min(0))


@torch.no_grad()
def sample_features(
    sample_fn: Callable[[int, Tensor | None], Tensor],
    features: Callable[[Tensor], Tensor],
    n: int,
    num_classes: int | None = None,
    batch_size: int = 500,
) -> Tensor:
    """Features [n, F] of ``n`` samples drawn ``batch_size`` at a time.

    With ``num_classes`` the sampler is given balanced labels (0, 1, ..., C-1, 0, ...), for models
    that draw conditionally on a class; otherwise it gets None.
    """
    out = []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        y = None if num_classes is None else torch.arange(start, start + m) % num_classes
        out.append(features(sample_fn(m, y).float().cpu()).cpu())
    return torch.cat(out)


@torch.no_grad()
def data_features(features: Callable[[Tensor], Tensor], batches: Iterable[dict[str, Tensor]]) -> Tensor:
    """Features [N, F] of every image in ``batches``."""
    return torch.cat([features(batch["x"].float().cpu()).cpu() for batch in batches])


@register_metric(
    "fid",
    needs=("labels", "sampler", "classifier"),
    reports=[
        Reported(
            "distance", "lower", "squared feature distance", "Fréchet distance of samples to test images"
        ),
        Reported("samples", None, "count", "model samples compared"),
        Reported("test_images", None, "count", "test images compared"),
        Reported(
            "classifier_test_accuracy", None, "fraction", "test accuracy of the judge whose features are used"
        ),
    ],
    n_samples=10000,
    batch_size=500,
)
def fid(context: MetricContext, n_samples: int, batch_size: int) -> dict[str, Any]:
    """Fréchet distance between the judge classifier's features of model samples and of test images."""
    from vaezoo.evaluation.classifier import classifier_record, load_classifier

    dataset = context.dataset or context.info.name
    judge = load_classifier(dataset, context.data_root or "data")
    model = context.model

    def draw(n: int, y: Tensor | None) -> Tensor:
        return model.sample(n, None if y is None else y.to(model.device))

    conditional = getattr(model, "requires_labels", False)
    fake = sample_features(
        draw, judge.features, n_samples, context.info.num_classes if conditional else None, batch_size
    )
    real = data_features(judge.features, context.batches)
    return {
        "distance": frechet_distance(fake, real),
        "samples": len(fake),
        "test_images": len(real),
        "classifier_test_accuracy": classifier_record(dataset, context.data_root or "data")["test_accuracy"],
    }
