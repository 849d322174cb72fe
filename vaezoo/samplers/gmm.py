"""A Gaussian mixture over the codes (pythae's GaussianMixtureSampler), fitted by EM in torch.

The number of components is chosen from a small grid by the held-out codes' log-likelihood: a mixture
with too few components leaves the aggregate posterior's shape unfitted, one with too many fits the
training codes' noise and loses on codes it has not seen. EM runs in float64 from k-means++ seeds,
with ``reg`` added to every covariance's diagonal (in standardised units) so no component collapses
onto a few codes. Of components within ``margin`` nats per held-out code of the best, the fewest win.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import torch
from torch import Tensor

from vaezoo.errors import ConfigError
from vaezoo.samplers import LatentSampler, held_out_log_likelihood, register_sampler

COVARIANCES = ("full", "diag")
#: Above this many units full covariances make EM slow (each step costs components × units² per code).
MANY_UNITS = 64

log = logging.getLogger("vaezoo.samplers.gmm")


@register_sampler(
    "gmm", components=[1, 2, 4, 8, 16, 32], covariance="full", max_iter=200, tol=1e-4, reg=1e-4, margin=0.01
)
class GaussianMixtureSampler(LatentSampler):
    """A Gaussian mixture with full or diagonal covariances; components chosen by held-out likelihood."""

    def __init__(self, dim: int, components: int, covariance: str = "full") -> None:
        super().__init__(dim)
        if covariance not in COVARIANCES:
            raise ConfigError(
                f"settings.gmm.covariance={covariance!r} is not one of {', '.join(COVARIANCES)}"
            )
        self.components, self.covariance = int(components), covariance
        self.register_buffer("weights", torch.full((components,), 1.0 / components, dtype=torch.float64))
        self.register_buffer("means", torch.zeros(components, dim, dtype=torch.float64))
        self.register_buffer("scale_tril", torch.eye(dim, dtype=torch.float64).repeat(components, 1, 1))

    @property
    def hparams(self) -> dict[str, Any]:
        return {"dim": self.dim, "components": self.components, "covariance": self.covariance}

    def mixture(self) -> torch.distributions.MixtureSameFamily:
        return torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(probs=self.weights),
            torch.distributions.MultivariateNormal(self.means, scale_tril=self.scale_tril),
        )

    def log_prob_standardised(self, u: Tensor) -> Tensor:
        log_joint = self.weights.log() + component_log_probs(
            u.double(), self.means, self.scale_tril, self.covariance == "diag"
        )
        return torch.logsumexp(log_joint, 1)

    def sample_standardised(self, n: int) -> Tensor:
        return self.mixture().sample((n,))

    @classmethod
    def fit(
        cls,
        train: Tensor,
        val: Tensor,
        seed: int,
        components: list[int] = (1, 2, 4, 8, 16, 32),  # type: ignore[assignment]
        covariance: str = "full",
        max_iter: int = 200,
        tol: float = 1e-4,
        reg: float = 1e-4,
        margin: float = 0.01,
    ) -> tuple[GaussianMixtureSampler, dict[str, Any]]:
        dim = train.shape[1]
        grid = sorted({int(k) for k in components if int(k) <= len(train)})
        if not grid:
            raise ConfigError(
                f"settings.gmm.components={list(components)} all exceed the {len(train)} training codes"
            )
        if covariance == "full" and dim > MANY_UNITS:
            log.warning(
                "gmm: full covariances over %d units make EM slow (measured: the grid over 150 units had not "
                "finished after 13 minutes of one thread); +settings.gmm.covariance=diag is far faster",
                dim,
            )
        held_out: dict[str, float] = {}
        fitted: dict[int, GaussianMixtureSampler] = {}
        for k in grid:
            started = time.perf_counter()
            candidate = cls(dim, k, covariance)
            candidate.standardise_with(train)
            generator = torch.Generator().manual_seed(seed)
            candidate.run_em(candidate.standardised(train), generator, max_iter, tol, reg)
            held_out[str(k)] = held_out_log_likelihood(candidate, val)
            fitted[k] = candidate
            log.info(
                "gmm: %d component(s), held-out log density %.2f nats per code (%.1f s)",
                k,
                held_out[str(k)],
                time.perf_counter() - started,
            )
        top = max(held_out.values())
        # the fewest components within ``margin`` nats per code of the best: a split that gains nothing
        # measurable on held-out codes is noise
        best = fitted[min(k for k in grid if held_out[str(k)] >= top - margin)]
        report = {
            "components": best.components,
            "covariance": covariance,
            "held_out_log_likelihood_by_components": held_out,
            "held_out_log_likelihood": held_out[str(best.components)],
        }
        return best, report

    @torch.no_grad()
    def run_em(self, u: Tensor, generator: torch.Generator, max_iter: int, tol: float, reg: float) -> None:
        """EM from k-means++ seeds on standardised codes u [N, D]; stops when the mean log-likelihood
        gains less than ``tol`` nats per code."""
        n, dim = u.shape
        means = kmeans_plus_plus(u, self.components, generator)
        covariances = torch.eye(dim, dtype=torch.float64).repeat(self.components, 1, 1)
        weights = torch.full((self.components,), 1.0 / self.components, dtype=torch.float64)
        previous = -math.inf
        eye = torch.eye(dim, dtype=torch.float64)
        for _ in range(max_iter):
            scale_tril = torch.linalg.cholesky(covariances)
            log_joint = weights.log() + component_log_probs(u, means, scale_tril, self.covariance == "diag")
            log_norm = torch.logsumexp(log_joint, 1)
            mean_log_likelihood = float(log_norm.mean())
            responsibilities = (log_joint - log_norm[:, None]).exp()
            counts = responsibilities.sum(0) + 1e-10
            weights = counts / n
            means = responsibilities.T @ u / counts[:, None]
            for k in range(self.components):
                centred = u - means[k]
                if self.covariance == "full":
                    covariances[k] = (responsibilities[:, k, None] * centred).T @ centred / counts[k]
                else:
                    covariances[k] = torch.diag(
                        (responsibilities[:, k, None] * centred.square()).sum(0) / counts[k]
                    )
                covariances[k] += reg * eye
            if mean_log_likelihood - previous < tol:
                break
            previous = mean_log_likelihood
        self.weights.copy_(weights / weights.sum())
        self.means.copy_(means)
        self.scale_tril.copy_(torch.linalg.cholesky(covariances))


def component_log_probs(u: Tensor, means: Tensor, scale_tril: Tensor, diagonal: bool = False) -> Tensor:
    """log N(u; μ_k, L_k L_kᵀ) per code and component: [N, K] (a component at a time: bounded memory).
    ``diagonal``: every L_k is diagonal, so the solve is a division (D, not D², operations per code)."""
    dim = u.shape[1]
    out = []
    for mean, tril in zip(means, scale_tril, strict=True):
        if diagonal:
            squared = ((u - mean) / tril.diagonal()).square().sum(1)
        else:
            squared = torch.linalg.solve_triangular(tril, (u - mean).T, upper=False).square().sum(0)
        half_log_det = tril.diagonal().log().sum()
        out.append(-0.5 * squared - half_log_det - 0.5 * dim * math.log(2 * math.pi))
    return torch.stack(out, 1)


def kmeans_plus_plus(u: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """k seeds [k, D] chosen by k-means++ (Arthur & Vassilvitskii 2007): each next one far from the others."""
    first = int(torch.randint(len(u), (1,), generator=generator))
    seeds = [u[first]]
    distances = (u - seeds[0]).square().sum(1)
    for _ in range(1, k):
        probabilities = distances / distances.sum() if float(distances.sum()) > 0 else None
        if probabilities is None:
            index = int(torch.randint(len(u), (1,), generator=generator))
        else:
            index = int(torch.multinomial(probabilities, 1, generator=generator))
        seeds.append(u[index])
        distances = torch.minimum(distances, (u - u[index]).square().sum(1))
    return torch.stack(seeds)
