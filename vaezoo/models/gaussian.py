"""Shared machinery for models with one Gaussian latent vector and a standard normal or VampPrior prior.

``prior="vamp"`` replaces N(0, I) by the VampPrior (Tomczak & Welling 2018): the mixture of the
posteriors of K learned pseudo-inputs u_k, p(z) = (1/K) Σ_k q(z|u_k). The pseudo-inputs live in data
space and go through the encoder at every use, so the prior follows the encoder as it learns. As in the
authors' code they pass through hardtanh(0, 1) (data lie in [0, 1]) and start at N(0.05, 0.01²) per
pixel. KL(q(z|x) || p(z)) has no closed form under a mixture: the ELBO's KL is the one-sample
Monte-Carlo estimate log q(z|x) − log p(z) at the z the decoder sees (``analytic_kl`` is False), and
:meth:`GaussianLatentVAE.kl_per_dim` splits that estimate per dimension (see :func:`vamp_kl_per_dim`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Normal

from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.likelihoods import Likelihood
from vaezoo.models.base import ELBOTerms, VAEModel
from vaezoo.nets import build_decoder, build_encoder

LOG_2PI = math.log(2 * math.pi)
PRIORS = ("standard_normal", "vamp")
#: The authors' initial pseudo-inputs (vae_vampprior: pseudoinputs_mean, pseudoinputs_std), in [0, 1].
PSEUDO_INPUT_MEAN, PSEUDO_INPUT_STD = 0.05, 0.01


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


def mixture_log_prob(z: Tensor, mu: Tensor, logvar: Tensor, max_elements: int = 1 << 24) -> Tensor:
    """log (1/K) Σ_k N(z; mu_k, diag exp(logvar_k)) for z [N, D] and K components [K, D]: [N].

    Evaluated in chunks of z so that no intermediate holds more than ``max_elements`` numbers.
    """
    k, d = mu.shape
    step = max(1, max_elements // (k * d))
    out = []
    for chunk in z.split(step):
        log_comp = gaussian_log_density(chunk.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0)).sum(-1)
        out.append(torch.logsumexp(log_comp, dim=1) - math.log(k))  # [n, K] -> [n]
    return torch.cat(out) if out else z.new_zeros(0)


def vamp_kl_per_dim(z: Tensor, mu_q: Tensor, logvar_q: Tensor, mu_p: Tensor, logvar_p: Tensor) -> Tensor:
    """One-sample KL estimate log q(z|x) − log p(z) under a mixture prior, split per dimension: [B, D].

    Dimension d gets log q(z_d|x) − log p_d(z_d), p_d the mixture's 1-D marginal (also a mixture), so a
    dimension the posterior does not use scores about 0; the rest of the joint estimate, Σ_d log p_d(z_d)
    − log p(z) (the prior's dependence between dimensions at z), is shared evenly, so the row sums to
    the joint estimate exactly. Any entry can be negative: it is an estimate, not a closed form.
    """
    log_q = gaussian_log_density(z, mu_q, logvar_q)  # [B, D]
    d = z.shape[1]
    # 1-D marginals: for each dimension a K-component mixture [B, K, D] -> [B, D]
    log_comp = gaussian_log_density(z.unsqueeze(1), mu_p.unsqueeze(0), logvar_p.unsqueeze(0))
    log_marginal = torch.logsumexp(log_comp, dim=1) - math.log(mu_p.shape[0])
    joint = mixture_log_prob(z, mu_p, logvar_p)  # [B]
    rest = (log_marginal.sum(1) - joint) / d
    return log_q - log_marginal + rest.unsqueeze(1)


class GaussianLatentVAE(VAEModel):
    """q(z|x) = N(mu(x), diag σ²(x)), p(z) = N(0, I) or the VampPrior, p(x|z) from the likelihood.

    Subclasses may condition encoder and decoder on a vector by overriding :meth:`condition`, and the
    prior too by overriding :meth:`prior_params` (a Gaussian p(z|y) instead of N(0, I)). ``prior="vamp"``
    is for unconditional models (vanilla, beta_vae): a conditional one keeps its own ``prior``.
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
        prior: str = "standard_normal",
        vamp_components: int = 500,
    ) -> None:
        super().__init__(data_info, likelihood)
        if prior not in PRIORS:
            raise ConfigError(f"model.prior={prior!r} must be one of {', '.join(PRIORS)}")
        if vamp_components < 1:
            raise ConfigError(f"model.vamp_components must be an integer >= 1, got {vamp_components}")
        net = dict(net or {"kind": "mlp"})
        self.latent_dim = latent_dim
        self.encoder = build_encoder(net, data_info.shape)
        self.posterior = nn.Linear(self.encoder.out_features + condition_dim, 2 * latent_dim)
        self.decoder = build_decoder(
            net, latent_dim + condition_dim, data_info.shape, likelihood.out_channels(data_info.shape[0])
        )
        self.pseudo_inputs: nn.Parameter | None = None
        if prior == "vamp":
            if condition_dim:
                raise ConfigError("model.prior=vamp is for unconditional models (vanilla, beta_vae)")
            init = torch.randn(vamp_components, *data_info.shape) * PSEUDO_INPUT_STD + PSEUDO_INPUT_MEAN
            self.pseudo_inputs = nn.Parameter(init)
            # a learned mixture prior: no N(0, 1) per dimension, and no closed-form KL
            self.standard_normal_prior = False
            self.analytic_kl = False

    def condition(self, y: Tensor | None) -> Tensor | None:
        """A conditioning vector for encoder and decoder; unconditional models return None."""
        return None

    def prior_params(self, y: Tensor | None) -> tuple[Tensor, Tensor] | None:
        """(mean, log-variance) of a conditional Gaussian prior p(z|y); None for N(0, I)."""
        return None

    def vamp_mixture(self) -> tuple[Tensor, Tensor]:
        """(means, log-variances) [K, D] of the VampPrior's components q(z|u_k)."""
        assert self.pseudo_inputs is not None
        u = F.hardtanh(self.pseudo_inputs, 0.0, 1.0)
        mu, logvar = self.posterior_params(u)
        return mu.float(), logvar.float()

    def log_prior(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """log p(z) (or log p(z|y)) summed over dimensions, for z [N, D]: [N]."""
        if self.pseudo_inputs is not None:
            return mixture_log_prob(z.float(), *self.vamp_mixture())
        prior = self.prior_params(y)
        if prior is None:
            return standard_normal_log_prob(z.float())
        mu_p, logvar_p = (p.float().expand_as(z) for p in prior)
        return gaussian_log_prob(z.float(), mu_p, logvar_p)

    def _kl(self, mu: Tensor, logvar: Tensor, y: Tensor | None, z: Tensor | None = None) -> Tensor:
        if self.pseudo_inputs is not None:  # one-sample estimate at z (drawn here if not given)
            if z is None:
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            return vamp_kl_per_dim(z.float(), mu.float(), logvar.float(), *self.vamp_mixture())
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
        return ELBOTerms(log_px_z=log_px_z, kl={"z": self._kl(mu, logvar, y, z)})

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
        if self.pseudo_inputs is not None:
            log_pz = self.log_prior(z.flatten(0, 1)).view(k, b)
        else:
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
        if self.pseudo_inputs is not None:  # a uniformly chosen component k, then z ~ q(z|u_k)
            mu, logvar = self.vamp_mixture()
            k = torch.randint(len(mu), (n,), device=self.device)
            return mu[k] + eps * torch.exp(0.5 * logvar[k])
        prior = self.prior_params(y)
        return eps if prior is None else prior[0] + eps * torch.exp(0.5 * prior[1])

    @torch.no_grad()
    def kl_per_dim(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Closed form under a Gaussian prior; under the VampPrior a fresh one-sample estimate per call."""
        mu, logvar = self.posterior_params(x, y)
        return self._kl(mu, logvar, y)
