"""One objective for training, validation and test: −E[log p(x|z)] + KL regulariser + extra terms."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from vaezoo.errors import ConfigError
from vaezoo.models.base import ELBOTerms, VAEModel
from vaezoo.objective.schedules import ConstantBeta, KLRegulariser


def iwae_bound(log_weights: Tensor) -> Tensor:
    """Burda et al. (2015): log (1/k) Σ_s w_s per example, from log weights [k, B] -> [B].

    Differentiating through the log-sum-exp gives each sample's gradient weighted by its normalised
    importance weight w̃_s = softmax(log w)_s, which is the correct IWAE gradient; nothing is
    detached. (Multiplying log w by non-detached normalised weights, as one popular zoo does, adds
    a spurious term through w̃ and optimises a different objective.)
    """
    return torch.logsumexp(log_weights.float(), dim=0) - math.log(log_weights.shape[0])


@dataclass
class ObjectiveOutput:
    """The scalar loss to minimise, the terms it came from, and detached scalars to log.

    ``metrics`` is empty (and, under IWAE, ``terms`` None) when the caller asked for no metrics.
    """

    loss: Tensor
    terms: ELBOTerms | None
    metrics: dict[str, Tensor | float]


class Objective:
    """Composes the loss from a model's ELBO terms.

    loss = mean_B[−log p(x|z)] + KL regulariser(t) + mean_B[Σ extra terms]       (k = 1)
    loss = −mean_B[IWAE bound with k samples]                                    (k > 1)

    The same instance, with the same step counter, is used for train, validation and test, so the
    logged ``loss`` is comparable across them; ``elbo`` is always the plain (β = 1) bound.
    With k > 1 (``objective.k``) the loss is the importance-weighted bound of Burda et al. (2015);
    it needs a model with a stochastic posterior (``importance_weighted``) and the plain β = 1 KL,
    since the KL is inside the importance weights and cannot be reweighted or floored there.
    k = 1 is exactly the ELBO objective.
    """

    def __init__(self, kl: KLRegulariser | None = None, k: int = 1) -> None:
        self.kl = kl or ConstantBeta()
        if int(k) != k or k < 1:
            raise ConfigError(f"objective.k must be a positive integer, got {k}")
        self.k = int(k)
        if self.k > 1 and (type(self.kl) is not ConstantBeta or self.kl.beta != 1.0):
            raise ConfigError(
                f"objective.k={self.k} (IWAE) weights whole samples, so the KL cannot be annealed, "
                f"floored or scaled; got kl={type(self.kl).__name__} with beta={self.kl.beta}. "
                "Use kl=constant beta=1, or objective.k=1"
            )

    def check_model(self, model: VAEModel, name: str) -> None:
        """Reject a model the objective cannot train (IWAE needs a stochastic posterior with a density)."""
        if self.k > 1 and model.loss_outside_elbo:
            raise ConfigError(
                f"objective.k={self.k} (IWAE) trains on the bound alone; model={name} adds a loss term "
                "outside the ELBO, which the bound cannot carry. Use objective.k=1"
            )
        if self.k > 1 and not model.importance_weighted:
            raise ConfigError(
                f"objective.k={self.k} (IWAE) needs a model with a stochastic, density-bearing posterior; "
                f"model={name} has none. Use objective.k=1"
            )

    def set_total_steps(self, total_steps: int) -> None:
        self.kl.set_total_steps(total_steps)

    def __call__(
        self, model: VAEModel, x: Tensor, y: Tensor | None, step: int, with_metrics: bool = True
    ) -> ObjectiveOutput:
        """The loss for one batch; ``with_metrics=False`` skips the logging scalars (quiet steps)."""
        if self.k > 1:
            return self.importance_weighted(model, x, y, step, with_metrics)
        terms = model.elbo_terms(x, y)
        recon = -terms.log_px_z.mean()
        kl_loss = self.kl.loss(terms.kl, step)
        extra = {name: t.mean() for name, t in terms.extra.items()}
        loss = recon + kl_loss + sum(extra.values())
        metrics = self.metrics(terms, loss, extra, step) if with_metrics else {}
        return ObjectiveOutput(loss=loss, terms=terms, metrics=metrics)

    def importance_weighted(
        self, model: VAEModel, x: Tensor, y: Tensor | None, step: int, with_metrics: bool = True
    ) -> ObjectiveOutput:
        """The IWAE loss; the one-sample ELBO terms are computed without gradients, for logging only."""
        bound = iwae_bound(model.log_importance_weights(x, y, self.k))
        loss = -bound.mean()
        if not with_metrics:  # the extra forward pass below only feeds the logs
            return ObjectiveOutput(loss=loss, terms=None, metrics={})
        with torch.no_grad():
            terms = model.elbo_terms(x, y)
        extra = {name: t.mean() for name, t in terms.extra.items()}
        metrics = self.metrics(terms, loss, extra, step)
        metrics["iwae_bound"] = bound.detach().mean()
        return ObjectiveOutput(loss=loss, terms=terms, metrics=metrics)

    def metrics(self, terms: ELBOTerms, loss: Tensor, extra: dict[str, Tensor], step: int) -> dict:
        out: dict[str, Tensor | float] = {
            "loss": loss.detach(),
            "elbo": terms.elbo.detach().mean(),
            "log_px_z": terms.log_px_z.detach().mean(),
            "kl": terms.kl_total.detach().mean(),
        }
        groups = terms.kl_per_group
        if len(groups) > 1:
            out.update({f"kl_{name}": v.detach().mean() for name, v in groups.items()})
        out.update({name: v.detach() for name, v in extra.items()})
        out.update({name: v.detach() for name, v in terms.stats.items()})
        out.update(self.kl.log_values(step))
        return out
