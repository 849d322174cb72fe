"""Shared machinery for models with one Gaussian latent vector and a standard normal prior."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from vaezoo.data.info import DataInfo
from vaezoo.likelihoods import Likelihood
from vaezoo.models.base import ELBOTerms, VAEModel
from vaezoo.nets import build_decoder, build_encoder

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """Closed-form KL(N(mu, exp(logvar)) || N(0, 1)) per dimension."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)


def gaussian_kl_two(mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor, logvar_p: Tensor) -> Tensor:
    """Closed-form KL(N(mu_q, var_q) || N(mu_p, var_p)) per dimension (≥ 0)."""
    return 0.5 * (
        logvar_p - logvar_q + (torch.exp(logvar_q) + (mu_q - mu_p).square()) * torch.exp(-logvar_p) - 1.0
    )


def gaussian_log_density(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, exp(logvar)) per element."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).square() * torch.exp(-logvar))


def gaussian_log_prob(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mu, exp(logvar)) summed over all but the batch dimension."""
    return gaussian_log_density(z, mu, logvar).flatten(1).sum(1)


def soft_clamp(x: Tensor, bound: float) -> Tensor:
    """Smoothly limits x to (−bound, bound) with non-zero gradient everywhere."""
    return bound * torch.tanh(x / bound)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """log N(z; 0, I) summed over the last dimension."""
    return -0.5 * (z.square() + LOG_2PI).sum(-1)


class GaussianLatentVAE(VAEModel):
    """q(z|x) = N(mu(x), diag σ²(x)), p(z) = N(0, I), p(x|z) from the likelihood.

    Subclasses may condition encoder and decoder on a vector by overriding :meth:`condition`, and the
    prior too by overriding :meth:`prior_params` (a Gaussian p(z|y) instead of N(0, I)).
    """

    importance_weighted = True
    standard_normal_prior = True

    def __init__(
        self,
        data_info: DataInfo,
        likelihood: Likelihood,
        latent_dim: int = 20,
        net: Mapping[str, Any] | None = None,
        condition_dim: int = 0,
    ) -> None:
        super().__init__(data_info, likelihood)
        net = dict(net or {"kind": "mlp"})
        self.latent_dim = latent_dim
        self.encoder = build_encoder(net, data_info.shape)
        self.posterior = nn.Linear(self.encoder.out_features + condition_dim, 2 * latent_dim)
        self.decoder = build_decoder(
            net, latent_dim + condition_dim, data_info.shape, likelihood.out_channels(data_info.shape[0])
        )

    def condition(self, y: Tensor | None) -> Tensor | None:
        """A conditioning vector for encoder and decoder; unconditional models return None."""
        return None

    def prior_params(self, y: Tensor | None) -> tuple[Tensor, Tensor] | None:
        """(mean, log-variance) of a conditional Gaussian prior p(z|y); None for N(0, I)."""
        return None

    def _kl(self, mu: Tensor, logvar: Tensor, y: Tensor | None) -> Tensor:
        prior = self.prior_params(y)
        if prior is None:
            return gaussian_kl(mu.float(), logvar.float())
        return gaussian_kl_two(mu.float(), logvar.float(), prior[0].float(), prior[1].float())

    def _with_condition(self, h: Tensor, y: Tensor | None) -> Tensor:
        c = self.condition(y)
        if c is None:
            return h
        return torch.cat([h, c.expand(*h.shape[:-1], c.shape[-1])], dim=-1)

    def posterior_params(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        mu, logvar = self.posterior(self._with_condition(self.encoder(x), y)).chunk(2, dim=-1)
        return mu, logvar

    def encode(self, x: Tensor, y: Tensor | None = None) -> Normal:
        mu, logvar = self.posterior_params(x, y)
        return Normal(mu, torch.exp(0.5 * logvar))

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decoder(self._with_condition(z, y))

    def elbo_terms(self, x: Tensor, y: Tensor | None = None) -> ELBOTerms:
        mu, logvar = self.posterior_params(x, y)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        log_px_z = self.likelihood.log_prob(self.decode(z, y), x)
        return ELBOTerms(log_px_z=log_px_z, kl={"z": self._kl(mu, logvar, y)})

    def log_importance_weights(self, x: Tensor, y: Tensor | None = None, k: int = 1) -> Tensor:
        mu, logvar = self.posterior_params(x, y)
        std = torch.exp(0.5 * logvar)
        eps = torch.randn(k, *mu.shape, device=mu.device, dtype=mu.dtype)
        z = mu + eps * std  # [k, B, D]
        b = x.shape[0]
        y_rep = None if y is None else y.repeat(k, *([1] * (y.dim() - 1)))
        params = self.decode(z.reshape(k * b, -1), y_rep)
        log_px_z = self.likelihood.log_prob_samples(params.view(k, b, *params.shape[1:]), x)
        log_qz = (-0.5 * (eps.float().square() + LOG_2PI) - 0.5 * logvar.float()).sum(-1)
        prior = self.prior_params(y)
        if prior is None:
            log_pz = standard_normal_log_prob(z.float())
        else:  # p(z|y) [B, D], broadcast over the k samples
            mu_p, logvar_p = (p.float().expand_as(z).flatten(0, 1) for p in prior)
            log_pz = gaussian_log_prob(z.float().flatten(0, 1), mu_p, logvar_p).view(k, b)
        return log_px_z + log_pz - log_qz

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | None = None) -> Tensor:
        return self.decode_latent(self.prior_latents(n, y), y)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        mu, _ = self.posterior_params(x, y)
        return self.likelihood.mean(self.decode(mu, y))

    @torch.no_grad()
    def representation(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.posterior_params(x, y)[0]

    @torch.no_grad()
    def decode_latent(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.likelihood.mean(self.decode(z, y))

    @torch.no_grad()
    def prior_latents(self, n: int, y: Tensor | None = None) -> Tensor:
        eps = torch.randn(n, self.latent_dim, device=self.device)
        prior = self.prior_params(y)
        return eps if prior is None else prior[0] + eps * torch.exp(0.5 * prior[1])

    @torch.no_grad()
    def kl_per_dim(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        mu, logvar = self.posterior_params(x, y)
        return self._kl(mu, logvar, y)
