"""Conditional accuracy: does a conditional model draw the class it is asked for?

The share of samples drawn for class c that the dataset's judge classifier labels c, over
``n_per_class`` samples of every class. A sampler that obeys the label scores the classifier's own
accuracy (~1); one that ignores it scores chance (1 / num_classes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from vaezoo.evaluation.registry import MetricContext, register_metric
from vaezoo.evaluation.reported import Reported


@torch.no_grad()
def conditional_accuracy(
    sample_fn: Callable[[int, Tensor], Tensor],
    classifier: Any,
    num_classes: int,
    n_per_class: int,
    seed: int = 0,
    batch_size: int = 500,
) -> dict[str, Any]:
    """{"accuracy": overall share, "per_class": [share for class 0..C-1]} of samples labelled as asked.

    ``sample_fn(n, y)`` draws n images [n, C, H, W] for labels y [n]; ``classifier.predict(x)`` labels them.
    """
    if num_classes < 2 or n_per_class < 1:
        raise ValueError(f"need num_classes >= 2 and n_per_class >= 1, got {num_classes}, {n_per_class}")
    torch.manual_seed(seed)
    per_class = []
    for c in range(num_classes):
        hits = 0
        for start in range(0, n_per_class, batch_size):
            m = min(batch_size, n_per_class - start)
            y = torch.full((m,), c, dtype=torch.long)
            predicted = classifier.predict(sample_fn(m, y).float().cpu()).cpu()
            hits += int((predicted == c).sum())
        per_class.append(hits / n_per_class)
    return {"accuracy": sum(per_class) / num_classes, "per_class": per_class}


@register_metric(
    "conditional_accuracy",
    needs=("labels", "conditional", "sampler", "classifier"),
    reports=[
        Reported("accuracy", "higher", "fraction", "samples drawn for a class that the judge labels so"),
        Reported("per_class", "higher", "fraction", "the same per class (a list)"),
    ],
    n_per_class=1000,
)
def conditional_accuracy_metric(context: MetricContext, n_per_class: int) -> dict[str, Any]:
    """Share of samples drawn for class c that the dataset's judge classifier labels c (a cVAE's control)."""
    from vaezoo.evaluation.classifier import load_classifier

    judge = load_classifier(context.dataset or context.info.name, context.data_root or "data")
    model = context.model
    num_classes = int(context.info.num_classes or 0)
    return conditional_accuracy(
        lambda n, y: model.sample(n, y.to(model.device)), judge, num_classes, n_per_class, context.seed
    )
