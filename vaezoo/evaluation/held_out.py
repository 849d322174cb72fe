"""The held-out test-set report (the ``test`` section of ``results.json``) at the end of every run."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any

import torch

from vaezoo.evaluation.metrics import Batch, active_units, importance_weighted_bound
from vaezoo.evaluation.reported import Reported, check_declarations
from vaezoo.models.base import VAEModel

log = logging.getLogger(__name__)

#: Every key of results.json's ``test`` section (what :func:`evaluate` writes), declared.
TEST_REPORTED = check_declarations(
    "the test report",
    [
        Reported("elbo_nats", "higher", "nats per example", "mean test ELBO"),
        Reported("log_px_z_nats", "higher", "nats per example", "mean reconstruction term log p(x|z)"),
        Reported("kl_nats", None, "nats per example", "mean KL(q(z|x) || p(z)), the rate"),
        Reported("kl_per_group_nats", None, "nats per example", "the KL per latent group (a dict)"),
        Reported("n_examples", None, "count", "test examples evaluated"),
        Reported("bits_per_dim", "lower", "bits/dim", "−ELBO in bits per pixel value (discrete data)"),
        Reported("bits_per_dim_note", None, "text", "why there is no bits/dim"),
        Reported("iw_bound_nats", "higher", "nats per example", "importance-weighted bound on log p(x)"),
        Reported("iw_k", None, "count", "importance samples per example of the IW bound"),
        Reported("iw_bits_per_dim", "lower", "bits/dim", "the IW bound in bits per pixel value"),
        Reported("iw_bound_note", None, "text", "why there is no IW bound"),
        Reported(
            "recon_mse", "lower", "squared pixel error", "mean squared error of the mean reconstruction"
        ),
        Reported("active_units", "higher", "count", "latent units whose posterior mean varies across inputs"),
        Reported("latent_units", None, "count", "latent units in all"),
        Reported("active_units_threshold", None, "variance", "variance above which a unit is active"),
    ],
)


@torch.no_grad()
def test_elbo(model: VAEModel, batches: Iterable[Batch]) -> dict[str, Any]:
    """Mean per-example ELBO and its parts over the test set, in nats."""
    sums: dict[str, float] = {}
    n = 0
    for batch in batches:
        terms = model.elbo_terms(batch["x"], batch.get("y"))
        parts = {"elbo": terms.elbo, "log_px_z": terms.log_px_z, "kl": terms.kl_total}
        parts.update({f"kl_{k}": v for k, v in terms.kl_per_group.items()})
        for key, value in parts.items():
            sums[key] = sums.get(key, 0.0) + float(value.double().sum())
        n += batch["x"].shape[0]
    return {key: value / n for key, value in sums.items()} | {"n_examples": n}


def first_examples(batches: Iterable[Batch], n: int) -> list[Batch]:
    """The first n examples of a batch stream, as a re-iterable list (for cheaper evaluations)."""
    out, taken = [], 0
    for batch in batches:
        if taken >= n:
            break
        keep = min(n - taken, batch["x"].shape[0])
        out.append({k: v[:keep] for k, v in batch.items()})
        taken += keep
    return out


@torch.no_grad()
def reconstruction_mse(model: VAEModel, batches: Iterable[Batch]) -> float:
    """Mean squared error per pixel between test images and their mean reconstructions."""
    total, n = 0.0, 0
    for batch in batches:
        x = batch["x"]
        total += float((model.reconstruct(x, batch.get("y")).float() - x.float()).square().double().sum())
        n += x.numel()
    return total / n


def evaluate(
    model: VAEModel,
    batches: Iterable[Batch],
    iw_k: int,
    iw_chunk: int,
    au_threshold: float = 0.01,
) -> dict[str, Any]:
    """Everything that goes into results.json's ``test`` section; ``batches`` is re-iterable."""
    was_training = model.training
    model.eval()
    try:
        elbo = test_elbo(model, batches)
        d = model.data_info.num_dims
        report: dict[str, Any] = {
            "elbo_nats": elbo["elbo"],
            "log_px_z_nats": elbo["log_px_z"],
            "kl_nats": elbo["kl"],
            "kl_per_group_nats": {k[3:]: v for k, v in elbo.items() if k.startswith("kl_")},
            "n_examples": elbo["n_examples"],
        }
        if model.data_info.shape[0] > 1:
            if model.likelihood.discrete:
                report["bits_per_dim"] = -elbo["elbo"] / (d * math.log(2))
            else:  # a density on [0, 1]-scaled pixels is not a probability of the 8-bit values
                report["bits_per_dim"] = None
                report["bits_per_dim_note"] = (
                    f"{type(model.likelihood).__name__} is a density, not a probability of the pixel values; "
                    "use likelihood=discretized_logistic for bits/dim"
                )
        if model.importance_weighted or iw_k > 1:
            log.info(
                "test report: importance-weighted bound, k=%d samples x %d examples (%s decoder passes; "
                "eval.iw_k and eval.max_examples set its cost)",
                iw_k,
                elbo["n_examples"],
                f"{iw_k * elbo['n_examples']:,}",
            )
        try:
            bound = importance_weighted_bound(model.log_importance_weights, batches, iw_k, iw_chunk)
            report["iw_bound_nats"] = float(bound.double().mean())
            report["iw_k"] = iw_k
            if report.get("bits_per_dim") is not None:
                report["iw_bits_per_dim"] = -report["iw_bound_nats"] / (d * math.log(2))
        except NotImplementedError as err:
            report["iw_bound_nats"] = None
            report["iw_bound_note"] = str(err)
            log.info("importance-weighted bound not available: %s", err)
        report["recon_mse"] = reconstruction_mse(model, batches)
        count, variances = active_units(model.representation, batches, au_threshold)
        report["active_units"] = count
        report["latent_units"] = int(variances.numel())
        report["active_units_threshold"] = au_threshold
        return report
    finally:
        model.train(was_training)
