"""Anomaly detection by the model's own terms: AUROC of −ELBO and of KL as out-of-distribution scores.

As in the seed tutorial that flags anomalies by their KL: a model trained on one dataset should give
the test images of another (``eval.ood_dataset``, e.g. MNIST against Fashion-MNIST) a lower ELBO and
a posterior further from its prior. The AUROC is the chance that a random out-of-distribution image
scores higher than a random in-distribution one (1: separable, 0.5: no better than chance).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from vaezoo.errors import ConfigError, DataError
from vaezoo.evaluation.registry import MetricContext, register_metric
from vaezoo.evaluation.reported import Reported

Batch = dict[str, Tensor]


def ood_auroc(scores_in: Tensor, scores_out: Tensor) -> float:
    """AUROC separating ``scores_out`` (positives; higher = more anomalous) from ``scores_in``."""
    from sklearn.metrics import roc_auc_score

    scores_in, scores_out = scores_in.double().flatten().cpu(), scores_out.double().flatten().cpu()
    if len(scores_in) == 0 or len(scores_out) == 0:
        raise ValueError("the AUROC needs in- and out-of-distribution scores")
    if not (torch.isfinite(scores_in).all() and torch.isfinite(scores_out).all()):
        raise ValueError("anomaly scores must be finite")
    labels = torch.cat([torch.zeros(len(scores_in)), torch.ones(len(scores_out))])
    return float(roc_auc_score(labels.numpy(), torch.cat([scores_in, scores_out]).numpy()))


@torch.no_grad()
def anomaly_scores(model: Any, batches: Iterable[Batch]) -> dict[str, Tensor]:
    """Per-example anomaly scores from the model's ELBO terms: {"neg_elbo": [N], "kl": [N]} in nats.

    A model that requires labels is given the batch's own labels (the other dataset's, for its images).
    """
    neg_elbo, kl = [], []
    for batch in batches:
        x = batch["x"].to(model.device)
        y = batch.get("y") if model.requires_labels else None
        terms = model.elbo_terms(x, None if y is None else y.to(model.device))
        neg_elbo.append(-terms.elbo.double().cpu())
        kl.append(terms.kl_total.double().cpu())
    return {"neg_elbo": torch.cat(neg_elbo), "kl": torch.cat(kl)}


def ood_dataset_config(job_dataset: DictConfig, ood_name: str) -> DictConfig:
    """The ``dataset`` group ``ood_name``, preprocessed as the job's dataset (root, binarization, seeds)."""
    from vaezoo.config.options import compose_group, group_options

    options = group_options("dataset")
    if ood_name not in options:
        raise ConfigError(
            f"eval.ood_dataset={ood_name!r} is not a dataset; choose one of: {', '.join(options)}"
        )
    if ood_name == job_dataset.name:
        raise ConfigError(f"eval.ood_dataset={ood_name} is the job's own dataset; choose another one")
    node = compose_group("dataset", ood_name)
    same = {
        "root": str(job_dataset.root),
        "binarize": job_dataset.get("binarize", "none"),
        "split_seed": job_dataset.get("split_seed", 0),
        "in_memory": True,
    }
    return OmegaConf.merge(node, same)


def ood_test_batches(
    job_dataset: DictConfig,
    ood_name: str,
    expected_shape: tuple[int, ...],
    batch_size: int,
    max_examples: int | None,
) -> list[Batch]:
    """The test split of ``ood_name`` built through the builder with the job's preprocessing, as batches.

    DataError when its images do not have the job's shape (a model cannot score them).
    """
    from vaezoo.builder import build

    datamodule = build(ood_dataset_config(job_dataset, ood_name))
    datamodule.load()
    if tuple(datamodule.info.shape) != tuple(expected_shape):
        raise DataError(
            f"eval.ood_dataset={ood_name} has images of shape {tuple(datamodule.info.shape)} but the model "
            f"reads {tuple(expected_shape)}; choose a dataset of the same shape"
        )
    batches, seen = [], 0
    for batch in datamodule.loader("test", batch_size=batch_size):
        if max_examples is not None and seen >= max_examples:
            break
        if max_examples is not None:
            batch = {k: v[: max_examples - seen] for k, v in batch.items()}
        batches.append(batch)
        seen += len(batch["x"])
    return batches


def ood_aurocs(model: Any, in_batches: Iterable[Batch], out_batches: Iterable[Batch]) -> dict[str, float]:
    """{"neg_elbo": AUROC, "kl": AUROC} of the model's anomaly scores, test split against the other data."""
    scores_in, scores_out = anomaly_scores(model, in_batches), anomaly_scores(model, out_batches)
    return {name: ood_auroc(scores_in[name], scores_out[name]) for name in scores_in}


@register_metric(
    "ood_auroc",
    needs=("ood",),
    reports=[
        Reported("neg_elbo", "higher", "AUROC", "−ELBO as a score flagging the other dataset's images"),
        Reported("kl", "higher", "AUROC", "KL as a score flagging the other dataset's images"),
        Reported("ood_dataset", None, "name", "the out-of-distribution dataset (eval.ood_dataset)"),
    ],
)
def ood_auroc_metric(context: MetricContext) -> dict[str, Any]:
    """AUROC of −ELBO and of KL as scores flagging eval.ood_dataset's test images against the job's."""
    assert context.ood_batches is not None
    out: dict[str, Any] = ood_aurocs(context.model, context.batches, context.ood_batches)
    out["ood_dataset"] = context.extras.get("ood_dataset")
    return out


def ood_batches_for(
    job_dataset: DictConfig, eval_cfg: Any, expected_shape: tuple[int, ...]
) -> tuple[str | None, list[Batch] | None]:
    """(name, test batches) of ``eval.ood_dataset`` for a job, or (None, None) when it is not set."""
    name = eval_cfg.get("ood_dataset") if eval_cfg is not None else None
    if not name:
        return None, None
    batch_size = int(eval_cfg.get("batch_size") or 500)
    max_examples = eval_cfg.get("max_examples")
    return str(name), ood_test_batches(job_dataset, str(name), expected_shape, batch_size, max_examples)
