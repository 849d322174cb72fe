"""The one post-fit evaluation: test report, registered metrics and pictures of a trained model.

The end of training (:mod:`vaezoo.stages.train`) and ``python -m vaezoo.evaluate``
(:mod:`vaezoo.stages.evaluate`) both call :func:`evaluate_model` with settings read from the job's
config by :meth:`PostFitSettings.from_config` (the evaluation stage may override some), so the same
job gives the same ``results.json`` numbers, the same picture files and the same W&B summary either
way. Everything random is seeded from the job's seed at the start, whatever ran before.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from vaezoo.errors import ConfigError

log = logging.getLogger("vaezoo")


@dataclass(frozen=True)
class EvalSettings:
    """The job's ``eval`` group: what goes into results.json's ``test`` and ``metrics`` sections."""

    metrics: tuple[str, ...]
    metric_settings: dict[str, Any]
    batch_size: int
    max_examples: int | None
    iw_k: int
    iw_chunk: int
    active_units_threshold: float
    ood_dataset: str | None
    representations: tuple[str, ...] = ("mean",)
    samplers: tuple[str, ...] = ()  # fitted latent samplers the sample metrics also run through


@dataclass(frozen=True)
class PictureSettings:
    """The job's ``pictures`` group: which latent-space pictures are drawn, from how many examples."""

    enabled: bool
    n_examples: int
    tsne_points: int
    ood: str | None


@dataclass(frozen=True)
class PostFitSettings:
    """Everything the post-fit evaluation reads from a config, read in this one place."""

    seed: int
    eval: EvalSettings
    pictures: PictureSettings
    device: str | None = None  # None: wherever the model already is
    recorded_test: dict[str, Any] | None = None  # given: the test report is not recomputed (eval.test=false)
    strict_metrics: bool = False  # metrics named on the command line: one that cannot run is an error

    @classmethod
    def from_config(cls, job_cfg: DictConfig, overrides: DictConfig | None = None) -> PostFitSettings:
        """The job's own settings (its config.yaml), with the non-null keys of ``overrides`` (the
        evaluation stage's ``seed``, ``device``, ``eval.*`` and ``pictures.*``) in their place."""
        over = overrides if overrides is not None else OmegaConf.create({})
        job_eval, job_pictures = _section(job_cfg, "eval"), _section(job_cfg, "pictures")
        eval_over, picture_over = over.get("eval") or {}, over.get("pictures") or {}

        def pick(section: str, key: str, job_value: Any) -> Any:
            given = (eval_over if section == "eval" else picture_over).get(key)
            return job_value if given is None else given

        named_metrics = eval_over.get("metrics")
        settings = _plain(job_eval.get("settings") or {})
        settings.update(_plain(eval_over.get("settings") or {}))
        max_examples = pick("eval", "max_examples", job_eval.get("max_examples"))
        eval_settings = EvalSettings(
            metrics=_names(named_metrics if named_metrics is not None else job_eval.get("metrics")),
            metric_settings=settings,
            batch_size=int(pick("eval", "batch_size", _required(job_eval, "eval", "batch_size"))),
            max_examples=None if max_examples is None else int(max_examples),
            iw_k=int(pick("eval", "iw_k", _required(job_eval, "eval", "iw_k"))),
            iw_chunk=int(pick("eval", "iw_chunk", _required(job_eval, "eval", "iw_chunk"))),
            active_units_threshold=float(
                pick("eval", "active_units_threshold", job_eval.get("active_units_threshold", 0.01))
            ),
            ood_dataset=pick("eval", "ood_dataset", job_eval.get("ood_dataset")),
            representations=_names(pick("eval", "representations", job_eval.get("representations")))
            or ("mean",),  # a job from before eval.representations: the means only, as then
            samplers=_names(eval_over.get("sampler")),
        )
        picture_settings = PictureSettings(
            enabled=bool(pick("pictures", "enabled", _required(job_pictures, "pictures", "enabled"))),
            n_examples=int(pick("pictures", "n_examples", _required(job_pictures, "pictures", "n_examples"))),
            tsne_points=int(
                pick("pictures", "tsne_points", _required(job_pictures, "pictures", "tsne_points"))
            ),
            ood=pick("pictures", "ood", job_pictures.get("ood")),
        )
        seed = over.get("seed")
        return cls(
            seed=int(job_cfg.get("seed", 0) if seed is None else seed),
            eval=eval_settings,
            pictures=picture_settings,
            device=over.get("device"),
            strict_metrics=named_metrics is not None,
        )

    def with_device(self, device: str | None) -> PostFitSettings:
        """The same settings on another device (training's end: the trainer's root device)."""
        return replace(self, device=device)

    def keeping_test(self, recorded: dict[str, Any]) -> PostFitSettings:
        """The same settings with the recorded test report reused (only metrics and pictures rerun)."""
        return replace(self, recorded_test=recorded)

    def eval_config(self) -> dict[str, Any]:
        """The ``eval`` mapping the metric pipeline and the out-of-distribution loader read."""
        return {
            "metrics": list(self.eval.metrics),
            "settings": self.eval.metric_settings,
            "batch_size": self.eval.batch_size,
            "max_examples": self.eval.max_examples,
            "ood_dataset": self.eval.ood_dataset,
            "representations": list(self.eval.representations),
        }

    def check(self) -> None:
        """Unknown metric names or settings fail now (before training or loading), in one line."""
        from vaezoo.evaluation.pipeline import check_eval_config

        check_eval_config(self.eval_config())


def _section(cfg: DictConfig, name: str) -> DictConfig:
    section = cfg.get(name)
    if section is None:
        raise ConfigError(f"the job's config has no {name} section; evaluate it with {name}.<key>=... set")
    return section


def _required(section: Any, name: str, key: str) -> Any:
    value = section.get(key)
    if value is None:
        raise ConfigError(
            f"the job's config has no {name}.{key}; pass {name}.{key}=<value> to the evaluation"
        )
    return value


def _plain(value: Any) -> dict[str, Any]:
    if isinstance(value, DictConfig):
        return OmegaConf.to_container(value, resolve=True)  # type: ignore[return-value]
    return dict(value)


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(n) for n in value)


@dataclass
class PostFit:
    """What the post-fit evaluation measured and drew."""

    test: dict[str, Any]
    metrics: dict[str, Any]
    pictures: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict[str, float]:
        """The W&B summary values: ``test/<key>`` and ``metrics/<name>[/<part>]`` numbers."""
        from vaezoo.evaluation.registry import summary_values

        test = {f"test/{k}": v for k, v in self.test.items() if isinstance(v, (int, float))}
        return test | summary_values(self.metrics)


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and torch's generators from one seed (the IW bound and the ELBO sample)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def evaluate_model(
    model: Any,
    datamodule: Any,
    dataset_cfg: DictConfig,
    settings: PostFitSettings,
    images_dir: Path,
    metrics_rows: list[dict[str, str]] | None = None,
    measured: Callable[[PostFit], None] | None = None,
    samplers: dict[str, Any] | None = None,
) -> PostFit:
    """Test report, registered metrics and (if enabled) pictures of ``model`` on its test split.

    ``measured`` is called with the numbers before any picture is drawn (training writes results.json
    there, so a picture that fails never loses them). ``metrics_rows`` are the job's metrics.csv rows
    (the training curves picture). ``samplers`` are the job's fitted latent samplers
    (:mod:`vaezoo.samplers.store`): the sample metrics run again through those named in
    ``settings.eval.samplers``, recorded as ``<metric>@<sampler>`` beside the prior's figures, and the
    pictures compare them all with the prior.
    """
    from vaezoo.evaluation.held_out import evaluate, first_examples
    from vaezoo.evaluation.ood import ood_batches_for
    from vaezoo.evaluation.pipeline import build_context, evaluate_metrics

    started = time.perf_counter()
    settings.check()
    if settings.device is not None:
        model.to(settings.device)
    model.eval()
    seed_everything(settings.seed)
    batches = datamodule.loader("test", batch_size=settings.eval.batch_size)
    if settings.eval.max_examples:
        batches = first_examples(batches, settings.eval.max_examples)
    device = next(model.parameters()).device  # a reloaded job's data is on the CPU, training's on its device
    batches = [{k: v.to(device) for k, v in batch.items()} for batch in batches]  # re-iterated below
    if settings.recorded_test is not None:
        test = dict(settings.recorded_test)
    else:
        test = evaluate(
            model, batches, settings.eval.iw_k, settings.eval.iw_chunk, settings.eval.active_units_threshold
        )
    eval_cfg = settings.eval_config()
    ood_name, ood_batches = ood_batches_for(dataset_cfg, eval_cfg, datamodule.info.shape)
    context = build_context(
        model,
        datamodule,
        batches,
        str(dataset_cfg.name),
        str(dataset_cfg.get("root")),
        settings.seed,
        ood_batches=ood_batches,
    )
    context.extras["ood_dataset"] = ood_name
    metrics = evaluate_metrics(eval_cfg, context, strict=settings.strict_metrics)
    metrics.update(sampler_metrics(eval_cfg, context, settings, samplers or {}))
    result = PostFit(test=test, metrics=metrics)
    if measured is not None:
        measured(result)
    if settings.pictures.enabled:
        reason = pictures_cannot_apply(test)
        if reason:
            log.warning("pictures skipped: %s", reason)
        else:
            result.pictures = draw_pictures_of(
                model, datamodule, settings, images_dir, metrics_rows or [], samplers or {}
            )
    result.seconds = time.perf_counter() - started
    return result


def sampler_metrics(
    eval_cfg: dict[str, Any], context: Any, settings: PostFitSettings, samplers: dict[str, Any]
) -> dict[str, Any]:
    """``{"<metric>@<sampler>": entry}``: the sample metrics of ``eval.metrics`` (those that need a
    sampler: FID, conditional accuracy) run again with the model drawing its codes from each sampler
    named in ``settings.eval.samplers`` (:class:`vaezoo.samplers.through.SampledThrough`), on the same
    test images and seed."""
    from dataclasses import replace as replaced

    from vaezoo.evaluation.pipeline import metric_names, metric_settings
    from vaezoo.evaluation.registry import check_metric_names, run_metrics
    from vaezoo.samplers.through import SampledThrough

    if not settings.eval.samplers:
        return {}
    names = [m.name for m in check_metric_names(metric_names(eval_cfg)) if "sampler" in m.needs]
    if not names:
        raise ConfigError(
            f"eval.sampler={','.join(settings.eval.samplers)} draws the samples of the sample metrics, but "
            f"eval.metrics ({', '.join(metric_names(eval_cfg)) or 'none'}) has none; add them, e.g. "
            "eval.metrics=[fid,conditional_accuracy]"
        )
    out: dict[str, Any] = {}
    for sampler in settings.eval.samplers:
        through = replaced(context, model=SampledThrough(context.model, samplers[sampler]))
        found = run_metrics(names, through, metric_settings(eval_cfg), strict=settings.strict_metrics)
        out.update({f"{name}@{sampler}": entry for name, entry in found.items()})
    return out


def pictures_cannot_apply(test: dict[str, Any]) -> str | None:
    """Why no latent-space picture can be drawn of this model (a diverged one decodes NaNs), or None."""
    elbo = test.get("elbo_nats")
    if elbo is None or not np.isfinite(elbo):
        return f"the model's test ELBO is {elbo} (the model diverged); retrain it with a lower optimizer.lr"
    return None


def draw_pictures_of(
    model: Any,
    datamodule: Any,
    settings: PostFitSettings,
    images_dir: Path,
    metrics_rows: list,
    samplers: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """The latent-space pictures (:mod:`vaezoo.visualize`) with the settings' pictures group."""
    from vaezoo.visualize import draw_pictures

    started = time.perf_counter()
    drawn = draw_pictures(
        model,
        datamodule,
        images_dir,
        metrics_rows=metrics_rows,
        n_examples=settings.pictures.n_examples,
        ood=settings.pictures.ood,
        tsne_points=settings.pictures.tsne_points,
        seed=settings.seed,
        samplers=samplers or {},
    )
    log.info("pictures (%s) drawn in %.1f s", ", ".join(drawn), time.perf_counter() - started)
    return drawn
