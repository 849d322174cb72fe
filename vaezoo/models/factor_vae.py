"""FactorVAE (Kim & Mnih 2018): the ELBO plus γ times a discriminator's estimate of total correlation.

The total correlation TC = KL(q(z) || Π_j q(z_j)) of the aggregate posterior is estimated by the density
ratio trick: a discriminator D tells codes z ~ q(z) (label 0, "real") from codes whose dimensions were
permuted independently across the batch (label 1, samples of Π_j q(z_j)), and TC ≈ E[log D_0(z) − log
D_1(z)], the difference of its two logits. The VAE minimises γ·TC through the encoder; the discriminator,
an auxiliary part with its own Adam (:class:`~vaezoo.models.base.AuxiliaryPart`), minimises its
cross-entropy in the same training step. As in disentanglement_lib, the permuted codes come from the same
batch, the discriminator is 6 × 1000 leaky-ReLU units and its Adam has lr 1e-4, betas (0.5, 0.9).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.likelihoods import Likelihood
from vaezoo.models import register
from vaezoo.models.base import AuxiliaryPart, ELBOTerms
from vaezoo.models.gaussian import GaussianLatentVAE

REAL, PERMUTED = 0, 1  # the discriminator's two classes (logit columns)


def permute_dims(z: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Each column of z [B, D] shuffled independently across the batch: a sample of Π_j q(z_j)."""
    order = torch.rand(z.shape, generator=generator, device=z.device).argsort(dim=0)
    return z.gather(0, order)


class Discriminator(nn.Sequential):
    """An MLP from codes [B, D] to two logits (real, permuted): ``layers`` × ``width`` leaky-ReLU units."""

    def __init__(self, latent_dim: int, layers: int = 6, width: int = 1000, slope: float = 0.2) -> None:
        modules: list[nn.Module] = []
        size = latent_dim
        for _ in range(layers):
            modules += [nn.Linear(size, width), nn.LeakyReLU(slope)]
            size = width
        modules.append(nn.Linear(size, 2))
        super().__init__(*modules)

    def tc_estimate(self, z: Tensor) -> Tensor:
        """log D_real(z) − log D_permuted(z) per example [B]: the density-ratio estimate of TC."""
        logits = self(z)
        return logits[:, REAL] - logits[:, PERMUTED]

    @staticmethod
    def loss(logits_real: Tensor, logits_permuted: Tensor) -> Tensor:
        """Cross-entropy of telling real codes from permuted ones, averaged over both halves."""
        real = torch.full((len(logits_real),), REAL, dtype=torch.long, device=logits_real.device)
        permuted = torch.full((len(logits_permuted),), PERMUTED, dtype=torch.long, device=logits_real.device)
        return 0.5 * (F.cross_entropy(logits_real, real) + F.cross_entropy(logits_permuted, permuted))

    @staticmethod
    def accuracy(logits_real: Tensor, logits_permuted: Tensor) -> Tensor:
        """The share of real and permuted codes classified correctly."""
        correct = (logits_real.argmax(1) == REAL).float().sum() + (
            logits_permuted.argmax(1) == PERMUTED
        ).sum()
        return correct / (len(logits_real) + len(logits_permuted))


@register("factor_vae")
class FactorVAE(GaussianLatentVAE):
    """Gaussian VAE whose loss adds ``gamma`` × the discriminator's TC estimate (extra term ``gamma_tc``).

    Logged: ``tc_estimate`` (the unweighted estimate), ``discriminator_loss`` and
    ``discriminator_accuracy`` (on real and permuted codes of the batch).
    """

    loss_outside_elbo = True  # so objective.k > 1 (the bound alone) is refused

    def __init__(
        self,
        data_info: DataInfo,
        likelihood: Likelihood,
        latent_dim: int = 10,
        net: Mapping[str, Any] | None = None,
        gamma: float = 10.0,
        discriminator_layers: int = 6,
        discriminator_width: int = 1000,
        discriminator_lr: float = 1e-4,
        discriminator_betas: Sequence[float] = (0.5, 0.9),
    ) -> None:
        super().__init__(data_info, likelihood, latent_dim=latent_dim, net=net)
        if gamma < 0:
            raise ConfigError(f"model.gamma must be >= 0, got {gamma}")
        if latent_dim < 2:
            raise ConfigError(
                f"model=factor_vae needs model.latent_dim >= 2 (total correlation is between dimensions), "
                f"got {latent_dim}"
            )
        self.gamma = float(gamma)
        self.discriminator = Discriminator(latent_dim, discriminator_layers, discriminator_width)
        betas = tuple(float(b) for b in discriminator_betas)
        if len(betas) != 2:
            raise ConfigError(f"model.discriminator_betas needs two numbers, got {list(discriminator_betas)}")
        self._auxiliary = AuxiliaryPart(self.discriminator, float(discriminator_lr), betas)  # type: ignore[arg-type]

    def auxiliary_part(self) -> AuxiliaryPart:
        return self._auxiliary

    def elbo_terms(self, x: Tensor, y: Tensor | None = None) -> ELBOTerms:
        mu, logvar = self.posterior_params(x, y)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        log_px_z = self.likelihood.log_prob(self.decode(z, y), x)
        logits_real = self.discriminator(z.float())
        tc = logits_real[:, REAL] - logits_real[:, PERMUTED]
        # The discriminator's loss: trained by its own optimiser only (the module confines the gradients).
        logits_permuted = self.discriminator(permute_dims(z.detach().float()))
        discriminator_loss = self.discriminator.loss(logits_real, logits_permuted)
        return ELBOTerms(
            log_px_z=log_px_z,
            kl={"z": self._kl(mu, logvar, y)},
            extra={"gamma_tc": self.gamma * tc},
            stats={
                "tc_estimate": tc.detach().mean(),
                "discriminator_loss": discriminator_loss.detach(),
                "discriminator_accuracy": self.discriminator.accuracy(
                    logits_real.detach(), logits_permuted.detach()
                ),
            },
            auxiliary_loss=discriminator_loss,
        )
