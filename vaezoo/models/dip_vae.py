"""DIP-VAE-I and DIP-VAE-II (Kumar et al. 2018): the ELBO plus a penalty pulling a covariance to I.

The penalty is λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)² of the batch covariance C of

- DIP-VAE-I: the posterior means, C = Cov_x[μ(x)] (Kumar et al., eq. 6);
- DIP-VAE-II: the whole aggregate posterior, C = Cov_x[μ(x)] + E_x[diag σ²(x)] (eq. 7).

The covariance is the batch's (divided by M, as in disentanglement_lib); the study's sweep sets
λ_d = 10 λ_od for I and λ_d = λ_od for II.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.likelihoods import Likelihood
from vaezoo.models import register
from vaezoo.models.base import ELBOTerms
from vaezoo.models.gaussian import GaussianLatentVAE


@dataclass
class DIPParts:
    """The unweighted parts of the DIP penalty: Σ_{i≠j} C_ij² and Σ_i (C_ii − 1)²."""

    off_diagonal: Tensor
    diagonal: Tensor


def covariance(mu: Tensor) -> Tensor:
    """The batch covariance of the rows of mu [M, D] (E[μμᵀ] − E[μ]E[μ]ᵀ, divided by M): [D, D]."""
    centred = mu - mu.mean(0, keepdim=True)
    return centred.T @ centred / len(mu)


def dip_parts(cov: Tensor) -> DIPParts:
    """How far a covariance [D, D] is from the identity, off and on its diagonal."""
    diagonal = torch.diagonal(cov)
    off = cov - torch.diag(diagonal)
    return DIPParts(off_diagonal=off.square().sum(), diagonal=(diagonal - 1.0).square().sum())


class DIPVAE(GaussianLatentVAE):
    """Shared by DIP-VAE-I and -II: they differ in the covariance (:meth:`penalised_covariance`)."""

    loss_outside_elbo = True  # so objective.k > 1 (the bound alone) is refused
    #: Whether the covariance includes the posterior variances (DIP-VAE-II) or only the means (I).
    with_posterior_variance: ClassVar[bool] = False

    def __init__(
        self,
        data_info: DataInfo,
        likelihood: Likelihood,
        latent_dim: int = 10,
        net: Mapping[str, Any] | None = None,
        lambda_od: float = 10.0,
        lambda_d: float = 100.0,
    ) -> None:
        super().__init__(data_info, likelihood, latent_dim=latent_dim, net=net)
        if lambda_od < 0 or lambda_d < 0:
            raise ConfigError(f"model.lambda_od and model.lambda_d must be >= 0, got {lambda_od}, {lambda_d}")
        self.lambda_od, self.lambda_d = float(lambda_od), float(lambda_d)

    def penalised_covariance(self, mu: Tensor, logvar: Tensor) -> Tensor:
        cov = covariance(mu.float())
        if self.with_posterior_variance:
            cov = cov + torch.diag(logvar.float().exp().mean(0))
        return cov

    def elbo_terms(self, x: Tensor, y: Tensor | None = None) -> ELBOTerms:
        mu, logvar = self.posterior_params(x, y)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        log_px_z = self.likelihood.log_prob(self.decode(z, y), x)
        parts = dip_parts(self.penalised_covariance(mu, logvar))
        penalty = self.lambda_od * parts.off_diagonal + self.lambda_d * parts.diagonal
        return ELBOTerms(
            log_px_z=log_px_z,
            kl={"z": self._kl(mu, logvar, y)},
            extra={"dip_penalty": penalty.expand(len(x))},  # a batch statistic, the same for each example
            stats={"dip_off_diagonal": parts.off_diagonal.detach(), "dip_diagonal": parts.diagonal.detach()},
        )


@register("dip_vae_i")
class DIPVAEI(DIPVAE):
    """DIP-VAE-I: the covariance of the posterior means (conf/model/dip_vae_i.yaml: λ_d = 10 λ_od)."""


@register("dip_vae_ii")
class DIPVAEII(DIPVAE):
    """DIP-VAE-II: the covariance of the aggregate posterior (conf/model/dip_vae_ii.yaml: λ_d = λ_od)."""

    with_posterior_variance = True
