"""One objective for training, validation and test: −E[log p(x|z)] + KL regulariser + extra terms."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from vaezoo.models.base import ELBOTerms, VAEModel
from vaezoo.objective.schedules import ConstantBeta, KLRegulariser


@dataclass
class ObjectiveOutput:
    """The scalar loss to minimise, the terms it came from, and detached scalars to log."""

    loss: Tensor
    terms: ELBOTerms
    metrics: dict[str, Tensor | float]


class Objective:
    """Composes the loss from a model's ELBO terms.

    loss = mean_B[−log p(x|z)] + KL regulariser(t) + mean_B[Σ extra terms]

    The same instance, with the same step counter, is used for train, validation and test, so the
    logged ``loss`` is comparable across them; ``elbo`` is always the plain (β = 1) bound.
    """

    def __init__(self, kl: KLRegulariser | None = None) -> None:
        self.kl = kl or ConstantBeta()

    def set_total_steps(self, total_steps: int) -> None:
        self.kl.set_total_steps(total_steps)

    def __call__(self, model: VAEModel, x: Tensor, y: Tensor | None, step: int) -> ObjectiveOutput:
        terms = model.elbo_terms(x, y)
        recon = -terms.log_px_z.mean()
        kl_loss = self.kl.loss(terms.kl, step)
        extra = {name: t.mean() for name, t in terms.extra.items()}
        loss = recon + kl_loss + sum(extra.values())
        return ObjectiveOutput(loss=loss, terms=terms, metrics=self.metrics(terms, loss, extra, step))

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
