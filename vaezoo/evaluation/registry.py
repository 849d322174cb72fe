"""The metric registry: name -> a function over what a model exposes, in the spirit of disentanglement_lib.

A metric is one module in ``vaezoo/evaluation/`` that decorates a function with
:func:`register_metric`; every module of the package is imported by :func:`load_metrics`, so adding a
metric is one file. Metrics see a :class:`MetricContext` (the model's latent-space interface, test
batches, the data description, ground-truth factors), never a model class, so no metric
special-cases a family. :func:`run_metrics` runs a list of them and records for each its value,
the settings used and the seconds taken, or the reason it was skipped.

A metric computed on a representation of the data (``per_representation=True``: the disentanglement
and unsupervised scores) runs once per entry of ``eval.representations``: on the posterior means
(``mean``, results.json key ``<name>``) and on one posterior sample per observation (``sampled``, key
``<name>@sampled``), as Locatello et al. (2019) report both.

Every metric declares each key it reports (``reports=[Reported(...)]``, see
:mod:`vaezoo.evaluation.reported`): which way is better and its unit. Renderers read that through
:func:`declared`; a metric that returns a key it did not declare is an error when it runs.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import pkgutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vaezoo.data.factors import GroundTruthData
from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.evaluation.reported import SINGLE, Reported, check_declarations, find, undeclared

log = logging.getLogger(__name__)

Batch = dict[str, Tensor]

#: The representations a metric computed on codes can use: posterior means, or one posterior sample each.
REPRESENTATIONS = ("mean", "sampled")

NEEDS = ("factors", "labels", "sampler", "importance_weights", "classifier", "ood", "conditional")


@dataclass
class MetricContext:
    """Everything a metric may use.

    ``model`` is used only through its latent-space interface (``representation``, ``decode_latent``,
    ``prior_latents``, ``kl_per_dim``, ``sample``, ``log_importance_weights``, ``elbo_terms``).
    ``batches`` is a re-iterable list of {"x", "y"} test batches; ``ground_truth`` is set for data with
    known factors of variation; ``ood_batches`` holds another dataset's test batches for anomaly scores.
    """

    model: Any  # VAEModel
    batches: list[Batch]
    info: DataInfo
    ground_truth: GroundTruthData | None = None
    data_root: str | None = None
    dataset: str | None = None
    ood_batches: list[Batch] | None = None
    seed: int = 0
    extras: dict[str, Any] = field(default_factory=dict)
    #: Which representation a per-representation metric reads: "mean" (``model.representation``) or
    #: "sampled" (``model.sample_representation``).
    representation: str = "mean"

    def missing(self, need: str) -> str | None:
        """Why this context cannot serve ``need``, or None when it can."""
        if need == "factors" and self.ground_truth is None:
            return (
                f"dataset {self.dataset or self.info.name} has no ground-truth factors (try dataset=dsprites)"
            )
        if need == "labels" and not self.info.has_labels:
            return f"dataset {self.dataset or self.info.name} has no labels"
        if need == "sampler" and not self.model.can_sample:
            return f"the model cannot sample: {self.model.sample_unavailable_reason}"
        if need == "importance_weights":
            try:
                x = self.batches[0]["x"][:1]
                y = self.batches[0].get("y")
                self.model.log_importance_weights(x, None if y is None else y[:1], 1)
            except NotImplementedError as err:
                return f"the model has no importance weights: {err}"
        if need == "classifier":
            from vaezoo.evaluation.classifier import classifier_missing

            return classifier_missing(self.dataset or self.info.name, self.data_root)
        if need == "conditional" and not getattr(self.model, "requires_labels", False):
            return "the model does not draw by class (it takes no labels); this metric is for model=cvae"
        if need == "ood" and self.ood_batches is None:
            return "no out-of-distribution data; set eval.ood_dataset=<another dataset>"
        return None

    def representation_missing(self) -> str | None:
        """Why the model cannot serve :attr:`representation`, or None when it can."""
        if self.representation != "sampled":
            return None
        x = self.batches[0]["x"][:1] if self.batches else None
        if x is None and self.ground_truth is not None:
            x = self.ground_truth.sample(1, np.random.default_rng(0))[1].to(self.model.device)
        try:
            with torch.no_grad():
                self.model.sample_representation(x, None)
        except NotImplementedError as err:
            return f"no sampled representation: {err}"
        return None


@dataclass(frozen=True)
class Metric:
    """One registered metric: ``function(context, **settings)`` returns a number or a dict of numbers,
    each key declared in ``reports``."""

    name: str
    needs: tuple[str, ...]
    defaults: dict[str, Any]
    function: Callable[..., Any]
    reports: tuple[Reported, ...]
    doc: str = ""
    per_representation: bool = False
    #: Observations the metric encodes, from its settings (None: a pass over the test batches or less).
    encodes: Callable[[dict[str, Any]], int] | None = None


METRICS: dict[str, Metric] = {}


def register_metric(
    name: str,
    needs: Sequence[str] = (),
    *,
    reports: Sequence[Reported],
    per_representation: bool = False,
    encodes: Callable[[dict[str, Any]], int] | None = None,
    **defaults: Any,
) -> Callable:
    """Decorator adding ``function(context, **settings)`` to the registry under ``name``.

    ``needs`` lists what the metric requires of the data and model (see :data:`NEEDS`); ``reports``
    declares every key it returns (``Reported("value", ...)`` for a metric returning one number);
    ``defaults`` are its settings as in the paper that defines it, overridable from
    ``eval.settings.<name>``. ``per_representation``: the metric reads codes through
    :func:`vaezoo.evaluation.factor_sampling.represent` and runs once per ``eval.representations``;
    ``encodes(settings)``: how many observations it encodes (its progress line's expected cost).
    """
    unknown = sorted(set(needs) - set(NEEDS))
    if unknown:
        raise ValueError(f"metric {name}: unknown needs {unknown}; known: {NEEDS}")
    declarations = check_declarations(f"metric {name}", reports)
    if len(declarations) > 1 and any(d.key == SINGLE for d in declarations):
        raise ValueError(f"metric {name}: {SINGLE!r} declares a metric's one number; it cannot have others")

    def add(function: Callable) -> Callable:
        if name in METRICS and METRICS[name].function is not function:
            raise ValueError(f"metric name {name!r} registered twice")
        params = inspect.signature(function).parameters
        missing = sorted(k for k in defaults if k not in params)
        if missing:
            raise ValueError(f"metric {name}: defaults {missing} are not parameters of {function.__name__}")
        doc = (inspect.getdoc(function) or "").split("\n")[0]
        METRICS[name] = Metric(
            name, tuple(needs), dict(defaults), function, declarations, doc, per_representation, encodes
        )
        return function

    return add


def load_metrics() -> dict[str, Metric]:
    """Import every module of ``vaezoo.evaluation`` once so that its metrics register themselves."""
    import vaezoo.evaluation as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    return METRICS


def declared(metric: str, key: str = SINGLE) -> Reported | None:
    """The declaration of ``key`` (``"value"`` for a one-number metric) of the registered ``metric``, or
    None when there is no such metric or key (an old results.json): such a number is never ranked.
    ``<metric>@sampled`` (the sampled representation) and ``<metric>@<sampler>`` (the metric through a
    fitted latent sampler) are declared as ``<metric>``."""
    registered = load_metrics().get(split_representation(metric)[0])
    return None if registered is None else find(registered.reports, key)


def split_representation(name: str) -> tuple[str, str]:
    """(metric, representation) of a results.json metric key: ``mig`` -> (mig, mean), ``mig@sampled``
    -> (mig, sampled)."""
    metric, _, representation = name.partition("@")
    return metric, representation or "mean"


def result_key(metric: Metric, representation: str) -> str:
    """results.json's key of ``metric`` on ``representation`` (the mean keeps the plain name)."""
    return (
        metric.name
        if representation == "mean" or not metric.per_representation
        else (f"{metric.name}@{representation}")
    )


def check_representations(representations: Sequence[str]) -> tuple[str, ...]:
    """``eval.representations`` as a tuple; an unknown or empty one is a one-line ConfigError."""
    unknown = [r for r in representations if r not in REPRESENTATIONS]
    if unknown or not representations:
        raise ConfigError(
            f"eval.representations={list(representations)} must list some of {', '.join(REPRESENTATIONS)}, "
            "e.g. eval.representations=[mean,sampled]"
        )
    return tuple(dict.fromkeys(representations))


def check_metric_names(names: Sequence[str]) -> list[Metric]:
    """The registered metrics for ``names``; one-line ConfigError for an unknown name."""
    registry = load_metrics()
    out = []
    for name in names:
        if name not in registry:
            raise ConfigError(
                f"unknown metric {name!r} in eval.metrics; registered metrics: {', '.join(sorted(registry))}"
            )
        out.append(registry[name])
    return out


def settings_for(metric: Metric, settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The metric's defaults overridden by ``settings[metric.name]``; unknown keys are a ConfigError."""
    given = dict((settings or {}).get(metric.name) or {})
    unknown = sorted(set(given) - set(metric.defaults))
    if unknown:
        raise ConfigError(
            f"eval.settings.{metric.name} has unknown keys {', '.join(unknown)}; "
            f"its settings are: {', '.join(sorted(metric.defaults)) or 'none'}"
        )
    for key, value in given.items():
        default = metric.defaults[key]
        counts = isinstance(default, int) and not isinstance(default, bool) and default >= 1
        if counts and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(
                f"eval.settings.{metric.name}.{key}={value} must be an integer >= 1 "
                f"(the default is {default}); set eval.settings.{metric.name}.{key}={default}"
            )
    return metric.defaults | given


def to_plain(value: Any) -> Any:
    """Tensors and numpy values as plain JSON numbers and lists."""
    if isinstance(value, Tensor):
        value = value.detach().cpu()
        return value.item() if value.numel() == 1 and value.dim() == 0 else value.tolist()
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def run_metrics(
    names: Sequence[str],
    context: MetricContext,
    settings: Mapping[str, Any] | None = None,
    strict: bool = False,
    representations: Sequence[str] = ("mean",),
) -> dict[str, dict[str, Any]]:
    """Run the named metrics on ``context``.

    Returns per metric {"value": number} (or {"values": {...}} for a metric with several figures)
    with "settings" and "seconds", or {"skipped": reason} when the data or model lacks what it
    needs. A per-representation metric runs once per entry of ``representations`` (its key on the
    sampled representation is ``<name>@sampled``). With ``strict`` (a user asked for exactly these
    metrics on exactly this data), a metric that does not apply is a one-line ConfigError instead of a
    skip. Each metric logs a line before it starts, with the observations it encodes and the time that
    should take at the rate measured so far.
    """
    metrics = check_metric_names(names)
    representations = check_representations(representations)
    resolved = {m.name: settings_for(m, settings) for m in metrics}
    runs = [(m, r) for m in metrics for r in (representations if m.per_representation else ("mean",))]
    results: dict[str, dict[str, Any]] = {}
    model = context.model
    was_training = model.training
    model.eval()
    try:
        for number, (metric, representation) in enumerate(runs, 1):
            key_name = result_key(metric, representation)
            run_context = replace(context, representation=representation)
            reason = next((r for r in (context.missing(n) for n in metric.needs) if r), None)
            if reason is None and metric.per_representation:
                reason = run_context.representation_missing()
            if reason is not None:
                if strict:
                    raise ConfigError(f"metric {key_name} cannot run: {reason}")
                log.info("metric %s skipped: %s", key_name, reason)
                results[key_name] = {"skipped": reason}
                continue
            log.info(
                "metric %d/%d %s: %s", number, len(runs), key_name, expected_cost(metric, resolved, context)
            )
            torch.manual_seed(context.seed)
            start = time.perf_counter()
            with torch.no_grad():
                value = metric.function(run_context, **resolved[metric.name])
            seconds = time.perf_counter() - start
            missing = undeclared(metric.reports, value)
            if missing:
                raise ValueError(
                    f"metric {metric.name} reported {missing}, which its register_metric(reports=[...]) "
                    "does not declare; declare each key with its direction and unit"
                )
            key = "values" if isinstance(value, Mapping) else "value"
            results[key_name] = {
                key: to_plain(value),
                "settings": to_plain(resolved[metric.name]),
                "seconds": seconds,
            }
            if metric.per_representation:
                results[key_name]["representation"] = representation
            log.info("metric %s: %s (%.1f s)", key_name, results[key_name][key], seconds)
    finally:
        model.train(was_training)
    return results


def expected_cost(metric: Metric, resolved: Mapping[str, dict[str, Any]], context: MetricContext) -> str:
    """The progress line's cost: observations encoded and the seconds that takes at the encoding rate
    measured so far (context.extras["encoded"], kept by factor_sampling.represent)."""
    if metric.encodes is None:
        return "running"
    n = metric.encodes(resolved[metric.name])
    count, seconds = context.extras.get("encoded", (0, 0.0))
    if count < 1 or seconds <= 0:
        return f"encodes {n:,} observations"
    return f"encodes {n:,} observations, about {n * seconds / count:.0f} s at {count / seconds:,.0f}/s so far"


def summary_values(results: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Flat ``metrics/<name>`` (and ``metrics/<name>/<part>``) numbers for a W&B summary."""
    out: dict[str, float] = {}
    for name, result in results.items():
        if "value" in result and isinstance(result["value"], (int, float)):
            out[f"metrics/{name}"] = result["value"]
        for part, value in (result.get("values") or {}).items():
            if isinstance(value, (int, float)):
                out[f"metrics/{name}/{part}"] = value
    return out
