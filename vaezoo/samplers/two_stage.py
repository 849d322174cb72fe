"""The two-stage VAE (Dai & Wipf 2019): a second, small VAE fitted to the first one's codes.

The first VAE's aggregate posterior q(z) is not N(0, I); a second VAE with as many latent units, an
MLP encoder and decoder and a Gaussian decoder whose variance γ is learned, is trained on the codes,
and its own aggregate posterior is close to N(0, I) (the paper's argument: the second stage sees data
with no low-dimensional manifold to collapse onto). Sampling draws u ~ N(0, I) and takes the second
decoder's mean as the code. Its "log density" is the second VAE's ELBO, a lower bound (one sample).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from vaezoo.samplers import LatentSampler, fit_by_early_stopping, register_sampler


def mlp(fan_in: int, hidden: int, fan_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(fan_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, fan_out)
    )


@register_sampler("two_stage", hidden=256, lr=1e-3, batch_size=256, max_epochs=100, patience=5)
class TwoStageSampler(LatentSampler):
    """A second VAE over the codes with a learned decoder variance γ (Dai & Wipf 2019)."""

    def __init__(self, dim: int, hidden: int = 256) -> None:
        super().__init__(dim)
        self.hidden = int(hidden)
        self.encoder = mlp(dim, hidden, 2 * dim)
        self.decoder = mlp(dim, hidden, dim)
        self.log_gamma = nn.Parameter(torch.zeros(()))

    @property
    def hparams(self) -> dict[str, Any]:
        return {"dim": self.dim, "hidden": self.hidden}

    def bounded_log_gamma(self) -> Tensor:
        """log γ kept in [-12, 4], so the likelihood and the draws use the same decoder variance."""
        return self.log_gamma.clamp(-12.0, 4.0)

    def log_prob_standardised(self, u: Tensor) -> Tensor:
        """The second VAE's one-sample ELBO of standardised codes [N] (a lower bound on log p)."""
        x = u.float()
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        logvar = logvar.clamp(-12.0, 8.0)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        mean = self.decoder(z)
        log_gamma = self.bounded_log_gamma()
        log_px_z = -0.5 * (
            ((x - mean).square() * torch.exp(-log_gamma)).sum(1)
            + self.dim * (log_gamma + math.log(2 * math.pi))
        )
        kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(1)
        return (log_px_z - kl).double()

    def sample_standardised(self, n: int) -> Tensor:
        """Ancestral samples of the second VAE: u ~ N(0, I), then z ~ N(decoder(u), γ I).

        The decoder's mean alone is Dai & Wipf's draw once γ → 0; while γ is not small (the second VAE
        explains part of the codes, the rest is its Gaussian noise), the mean alone collapses the samples
        towards the codes' centre, so the noise is drawn too: these are samples of the density whose
        held-out likelihood the fit reports.
        """
        device = self.shift.device
        mean = self.decoder(torch.randn(n, self.dim, device=device))
        gamma = self.bounded_log_gamma().exp()
        return (mean + gamma.sqrt() * torch.randn_like(mean)).double()

    @classmethod
    def fit(
        cls,
        train: Tensor,
        val: Tensor,
        seed: int,
        hidden: int = 256,
        lr: float = 1e-3,
        batch_size: int = 256,
        max_epochs: int = 100,
        patience: int = 5,
    ) -> tuple[TwoStageSampler, dict[str, Any]]:
        torch.manual_seed(seed)
        second = cls(train.shape[1], hidden)
        second.standardise_with(train)
        u_train, u_val = second.standardised(train).float(), second.standardised(val).float()
        training = fit_by_early_stopping(
            second,
            lambda u: -second.log_prob_standardised(u),
            u_train,
            u_val,
            seed,
            lr,
            batch_size,
            max_epochs,
            patience,
        )
        held_out = -training.pop("held_out_loss") - float(second.scale.log().sum())
        report = {
            **training,
            "held_out_elbo": held_out,
            "decoder_variance_gamma": float(second.log_gamma.detach().exp()),
        }
        return second, report
