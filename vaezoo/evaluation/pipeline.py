"""Running the registered metrics on a trained model, at the end of training and in the evaluation stage."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vaezoo.evaluation.registry import (
    Batch,
    MetricContext,
    check_metric_names,
    check_representations,
    load_metrics,
    run_metrics,
    settings_for,
)

log = logging.getLogger(__name__)


def metric_names(eval_cfg: DictConfig | Mapping[str, Any]) -> list[str]:
    """``eval.metrics`` as a list of names (null or [] means none)."""
    names = eval_cfg.get("metrics") if eval_cfg is not None else None
    if names is None:
        return []
    if isinstance(names, str):
        return [names]
    return [str(n) for n in names]


def metric_settings(eval_cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    settings = eval_cfg.get("settings") if eval_cfg is not None else None
    if settings is None:
        return {}
    if isinstance(settings, DictConfig):
        return OmegaConf.to_container(settings, resolve=True)  # type: ignore[return-value]
    return dict(settings)


def representations_of(eval_cfg: DictConfig | Mapping[str, Any]) -> tuple[str, ...]:
    """``eval.representations`` (null or absent: the means only), checked."""
    given = eval_cfg.get("representations") if eval_cfg is not None else None
    if given is None:
        return ("mean",)
    return check_representations([given] if isinstance(given, str) else [str(r) for r in given])


def check_eval_config(eval_cfg: DictConfig | Mapping[str, Any]) -> None:
    """Unknown metric names, settings and representations fail before any training or loading
    (one-line ConfigError)."""
    representations_of(eval_cfg)
    settings = metric_settings(eval_cfg)
    for metric in check_metric_names(metric_names(eval_cfg)):
        settings_for(metric, settings)
    # Settings of a metric not in the list (e.g. the job's own list, read later) are checked as well:
    # an impossible value fails now, not after loading the job or when the list later includes it.
    registered = load_metrics()
    for name in settings:
        if name in registered:
            settings_for(registered[name], settings)


def ground_truth_for(datamodule: Any) -> Any:
    """The data module's ground-truth factors (a GroundTruthData) when its dataset has them, else None."""
    getter = getattr(datamodule, "ground_truth", None)
    return getter() if callable(getter) else None


def build_context(
    model: Any,
    datamodule: Any,
    batches: Iterable[Batch],
    dataset: str,
    data_root: str | None,
    seed: int,
    ood_batches: Sequence[Batch] | None = None,
) -> MetricContext:
    """A MetricContext over ``batches`` (made a re-iterable list) for the model and its data."""
    return MetricContext(
        model=model,
        batches=list(batches),
        info=datamodule.info,
        ground_truth=ground_truth_for(datamodule),
        data_root=data_root,
        dataset=dataset,
        ood_batches=list(ood_batches) if ood_batches is not None else None,
        seed=seed,
    )


def evaluate_metrics(
    eval_cfg: DictConfig | Mapping[str, Any], context: MetricContext, strict: bool = False
) -> dict[str, Any]:
    """results.json's ``metrics`` for ``eval.metrics`` (inapplicable ones skipped, with reasons)."""
    names = metric_names(eval_cfg)
    if not names:
        return {}
    return run_metrics(
        names, context, metric_settings(eval_cfg), strict=strict, representations=representations_of(eval_cfg)
    )
