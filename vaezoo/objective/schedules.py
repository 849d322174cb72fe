"""KL weighting and regularisation (the ``kl`` config group), applied per optimiser step.

Each regulariser turns the per-dimension KL of a batch into the KL part of the loss at step t.
"""

from __future__ import annotations

import torch
from torch import Tensor

from vaezoo.errors import ConfigError


class KLRegulariser:
    """Maps per-group, per-dimension KL [B, D] at optimiser step t to a scalar loss term."""

    def __init__(self, beta: float = 1.0) -> None:
        if beta < 0:
            raise ConfigError(f"beta must be >= 0, got {beta}")
        self.beta = float(beta)
        self.total_steps: int | None = None

    def set_total_steps(self, total_steps: int) -> None:
        """Told once by the trainer, for schedules defined relative to the whole run."""
        self.total_steps = max(int(total_steps), 1)

    def weight(self, step: int) -> float:
        """The effective KL weight β(t) at this step."""
        return self.beta * self.factor(step)

    def factor(self, step: int) -> float:
        return 1.0

    def loss(self, kl: dict[str, Tensor], step: int) -> Tensor:
        """The batch-mean KL part of the loss."""
        total = sum(k.flatten(1).sum(1) for k in kl.values())
        return self.weight(step) * total.mean()

    def log_values(self, step: int) -> dict[str, float]:
        return {"kl/beta": self.weight(step)}


class ConstantBeta(KLRegulariser):
    """β·KL with β fixed (β = 1 is the plain ELBO; β > 1 the β-VAE)."""


class LinearWarmup(KLRegulariser):
    """β·min(1, t / warmup_steps)·KL: KL annealing from 0 (Bowman et al. 2016)."""

    def __init__(self, beta: float = 1.0, warmup_steps: int = 2000) -> None:
        super().__init__(beta)
        if warmup_steps <= 0:
            raise ConfigError(f"kl.warmup_steps must be > 0, got {warmup_steps}")
        self.warmup_steps = warmup_steps

    def factor(self, step: int) -> float:
        return min(1.0, step / self.warmup_steps)


class Cyclical(KLRegulariser):
    """Cyclical annealing (Fu et al. 2019): M cycles over training, ramping 0 -> 1 for a fraction R.

    Within each cycle of length T/M the weight rises linearly over the first R of it, then stays 1.
    """

    def __init__(self, beta: float = 1.0, cycles: int = 4, ramp_fraction: float = 0.5) -> None:
        super().__init__(beta)
        if cycles < 1 or not 0 < ramp_fraction <= 1:
            raise ConfigError(
                f"kl.cycles must be >= 1 and 0 < kl.ramp_fraction <= 1, got {cycles}, {ramp_fraction}"
            )
        self.cycles = cycles
        self.ramp_fraction = ramp_fraction

    def factor(self, step: int) -> float:
        if self.total_steps is None:
            raise RuntimeError("Cyclical schedule needs set_total_steps() before use")
        period = self.total_steps / self.cycles
        tau = (step % period) / period
        return min(1.0, tau / self.ramp_fraction)


class FreeBits(KLRegulariser):
    """Free bits (Kingma et al. 2016): batch-mean KL floored at λ nats per dimension or per group.

    ``per="dim"`` floors each latent dimension; ``per="group"`` floors each latent group's total
    (one group per stochastic layer in a hierarchical VAE, as in IAF / NVAE). Units below λ get no
    gradient pushing them further to the prior, which prevents posterior collapse of the whole code.
    """

    def __init__(self, beta: float = 1.0, lambda_: float = 0.1, per: str = "dim") -> None:
        super().__init__(beta)
        if lambda_ < 0:
            raise ConfigError(f"kl.lambda_ must be >= 0, got {lambda_}")
        if per not in ("dim", "group"):
            raise ConfigError(f"kl.per={per!r} must be dim or group")
        self.lambda_ = lambda_
        self.per = per

    def loss(self, kl: dict[str, Tensor], step: int) -> Tensor:
        if self.per == "group":
            floored = sum(torch.clamp(k.flatten(1).sum(1).mean(), min=self.lambda_) for k in kl.values())
        else:
            floored = sum(torch.clamp(k.flatten(1).mean(0), min=self.lambda_).sum() for k in kl.values())
        return self.weight(step) * floored

    def log_values(self, step: int) -> dict[str, float]:
        return {"kl/beta": self.weight(step), "kl/free_bits": self.lambda_}


class CapacityAnnealing(KLRegulariser):
    """Controlled capacity increase (Burgess et al. 2018): γ·|KL − C(t)|, C rising linearly to C_max.

    β is not used (γ replaces it), so β must stay 1 to avoid a silently ignored setting.
    """

    def __init__(
        self,
        beta: float = 1.0,
        gamma: float = 1000.0,
        max_capacity: float = 25.0,
        anneal_steps: int = 100_000,
    ) -> None:
        super().__init__(beta)
        if self.beta != 1.0:
            raise ConfigError(
                f"kl=capacity replaces beta by kl.gamma·|KL - C(t)| (it sets beta=1), so beta={self.beta} "
                "would be ignored; drop the beta override, or use kl=constant to weight the KL by beta"
            )
        if anneal_steps <= 0:
            raise ConfigError(f"kl.anneal_steps must be > 0, got {anneal_steps}")
        self.gamma = gamma
        self.max_capacity = max_capacity
        self.anneal_steps = anneal_steps

    def capacity(self, step: int) -> float:
        return self.max_capacity * min(1.0, step / self.anneal_steps)

    def loss(self, kl: dict[str, Tensor], step: int) -> Tensor:
        total = sum(k.flatten(1).sum(1) for k in kl.values()).mean()
        return self.gamma * (total - self.capacity(step)).abs()

    def weight(self, step: int) -> float:
        return self.gamma

    def log_values(self, step: int) -> dict[str, float]:
        return {"kl/gamma": self.gamma, "kl/capacity": self.capacity(step)}


__all__ = [
    "CapacityAnnealing",
    "ConstantBeta",
    "Cyclical",
    "FreeBits",
    "KLRegulariser",
    "LinearWarmup",
]
