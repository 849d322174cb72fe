"""β-TCVAE (Chen et al. 2018): the ELBO plus (β − 1) times a minibatch estimate of total correlation.

With the aggregate posterior q(z) = (1/N) Σ_n q(z|x_n) over the N training examples, the KL term's
expectation splits into three parts (Chen et al., eq. 2):

    E[log q(z|x) − log p(z)] = E[log q(z|x) − log q(z)]          index-code mutual information (MI)
                             + E[log q(z) − Σ_j log q(z_j)]       total correlation (TC)
                             + E[Σ_j log q(z_j) − log p(z_j)]     dimension-wise KL (DWKL)

q(z) and its marginals q(z_j) are estimated on the batch: minibatch-weighted sampling (``mws``,
Chen et al.'s eq. 5, as disentanglement_lib) weights every batch member's density 1/(N·M); stratified
sampling (``mss``) weights the example's own density 1/N and each of the M − 1 others (N − 1)/(N(M − 1)).
The ELBO's KL stays the closed form; the loss adds (``tc_beta`` − 1)·TC (β-TCVAE with α = γ = 1, as in the
study), and the three estimates are logged: per example they sum to log q(z|x) − log p(z) exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.likelihoods import Likelihood
from vaezoo.models import register
from vaezoo.models.base import ELBOTerms
from vaezoo.models.gaussian import GaussianLatentVAE, gaussian_log_density, standard_normal_log_prob

ESTIMATORS = ("mws", "mss")


@dataclass
class KLDecomposition:
    """Per-example estimates [B] of the three parts of the KL term; they sum to log q(z|x) − log p(z)."""

    mi: Tensor
    tc: Tensor
    dwkl: Tensor


def log_weights(batch_size: int, dataset_size: int, estimator: str, device: torch.device) -> Tensor:
    """log w[i, j]: the weight of q(z_i | x_j) in the estimate of q(z_i), [M, M] (rows sum to 1/N or 1)."""
    m, n = batch_size, dataset_size
    if estimator == "mws" or m == 1:  # one example: both estimators give its own density weight 1/N
        return torch.full((m, m), -math.log(n * m), device=device)
    if estimator != "mss":
        raise ConfigError(f"model.tc_estimator must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    weights = torch.full((m, m), (n - 1) / (n * (m - 1)), device=device)
    weights.fill_diagonal_(1.0 / n)
    return weights.log()


def decompose_kl(
    z: Tensor, mu: Tensor, logvar: Tensor, dataset_size: int, estimator: str = "mws"
) -> KLDecomposition:
    """MI, TC and DWKL per example from one sample z [M, D] of each posterior N(mu, exp(logvar)) [M, D]."""
    z, mu, logvar = z.float(), mu.float(), logvar.float()
    # log q(z_i,d | x_j) for every pair of batch members: [M (sample i), M (posterior j), D].
    log_q_pairs = gaussian_log_density(z[:, None, :], mu[None, :, :], logvar[None, :, :])
    log_w = log_weights(len(z), dataset_size, estimator, z.device)
    log_qz_given_x = log_q_pairs.diagonal(dim1=0, dim2=1).sum(0)  # [M]: each sample under its own posterior
    log_qz = torch.logsumexp(log_w + log_q_pairs.sum(2), dim=1)  # [M]
    log_qz_marginals = torch.logsumexp(log_w[:, :, None] + log_q_pairs, dim=1).sum(1)  # [M]: Σ_d log q(z_d)
    log_pz = standard_normal_log_prob(z)
    return KLDecomposition(
        mi=log_qz_given_x - log_qz, tc=log_qz - log_qz_marginals, dwkl=log_qz_marginals - log_pz
    )


@register("beta_tcvae")
class BetaTCVAE(GaussianLatentVAE):
    """Gaussian VAE whose loss adds (``tc_beta`` − 1) × the batch's TC estimate (extra term ``excess_tc``).

    Logged: ``mi_estimate``, ``tc_estimate`` and ``dwkl_estimate``. ``dataset_size`` (null: the training
    set's size, from the data) is the N of the estimators.
    """

    loss_outside_elbo = True  # so objective.k > 1 (the bound alone) is refused

    def __init__(
        self,
        data_info: DataInfo,
        likelihood: Likelihood,
        latent_dim: int = 10,
        net: Mapping[str, Any] | None = None,
        tc_beta: float = 6.0,
        tc_estimator: str = "mws",
        dataset_size: int | None = None,
    ) -> None:
        super().__init__(data_info, likelihood, latent_dim=latent_dim, net=net)
        if tc_estimator not in ESTIMATORS:
            raise ConfigError(
                f"model.tc_estimator must be one of {', '.join(ESTIMATORS)}, got {tc_estimator!r}"
            )
        size = dataset_size if dataset_size is not None else data_info.train_size
        if size is None or size < 1:
            raise ConfigError(
                f"model=beta_tcvae needs the number of training examples, which dataset {data_info.name} "
                "does not give; set model.dataset_size"
            )
        self.tc_beta = float(tc_beta)
        self.tc_estimator = tc_estimator
        self.dataset_size = int(size)

    def elbo_terms(self, x: Tensor, y: Tensor | None = None) -> ELBOTerms:
        mu, logvar = self.posterior_params(x, y)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        log_px_z = self.likelihood.log_prob(self.decode(z, y), x)
        parts = decompose_kl(z, mu, logvar, self.dataset_size, self.tc_estimator)
        return ELBOTerms(
            log_px_z=log_px_z,
            kl={"z": self._kl(mu, logvar, y)},
            extra={"excess_tc": (self.tc_beta - 1.0) * parts.tc},
            stats={
                "mi_estimate": parts.mi.detach().mean(),
                "tc_estimate": parts.tc.detach().mean(),
                "dwkl_estimate": parts.dwkl.detach().mean(),
            },
        )
