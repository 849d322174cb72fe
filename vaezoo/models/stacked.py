"""Burda, Grosse & Salakhutdinov's (2015) VAE with L stochastic layers and *bottom-up* inference.

Inference climbs the stack, q(z1|x) q(z2|z1) … q(zL|zL−1); generation descends it, p(zL) = N(0, I),
p(zl|zl+1), p(x|z1). Each conditional is a diagonal Gaussian read off a small MLP. This is the
architecture of the IWAE paper's two-layer rows (x-200-200-z1(100)-100-100-z2(50), tanh, in the authors'
code); vaezoo's ``hvae`` is the top-down (Ladder VAE) alternative.

KL per layer: the top layer's is closed-form given the sample below it; a lower layer's,
E_q[log q(zl|zl−1) − log p(zl|zl+1)], has no closed form (zl+1 is drawn from q given zl), so it is a
one-sample estimate that can be negative per dimension (``analytic_kl`` is False). The total is the
same single-sample ELBO that :meth:`log_importance_weights` gives with k = 1.

Linear layers start as in the authors' code (Glorot-uniform weights, zero biases; ``init=glorot``): the
posterior means then vary about 5× more across inputs at the start than with torch's default (``init=torch``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.likelihoods import Likelihood
from vaezoo.models import register
from vaezoo.models.base import ELBOTerms, VAEModel
from vaezoo.models.gaussian import (
    gaussian_kl,
    gaussian_log_density,
    gaussian_log_prob,
    soft_clamp,
    standard_normal_log_prob,
)
from vaezoo.nets import build_decoder, build_encoder
from vaezoo.nets.mlp import activation, mlp

INITS = ("glorot", "torch")
LOGVAR_BOUND = 10.0  # log-variances are soft-clamped to ±10 so exp() stays finite


class GaussianHead(nn.Module):
    """A diagonal Gaussian read off a network's output: (mean, log-variance)."""

    def __init__(self, trunk: nn.Module, features: int, latent_dim: int) -> None:
        super().__init__()
        self.trunk, self.out = trunk, nn.Linear(features, 2 * latent_dim)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.out(self.trunk(h)).chunk(2, dim=-1)
        return mu, soft_clamp(logvar, LOGVAR_BOUND)


def gaussian_mlp(sizes: Sequence[int], latent_dim: int, act: str) -> GaussianHead:
    """in -> hidden… (act after each) -> Gaussian over latent_dim units."""
    return GaussianHead(nn.Sequential(mlp(sizes, act), activation(act)), sizes[-1], latent_dim)


def draw(mu: Tensor, logvar: Tensor) -> Tensor:
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


@register("stacked")
class StackedVAE(VAEModel):
    """Latent layers ``z1`` (fed by x) … ``zL`` (N(0, I) prior), bottom-up inference."""

    importance_weighted = True
    analytic_kl = False

    def __init__(
        self,
        data_info: DataInfo,
        likelihood: Likelihood,
        latent_dim: Sequence[int] = (100, 50),
        between: Sequence[Sequence[int]] = ((100, 100),),
        net: Mapping[str, Any] | None = None,
        init: str = "glorot",
    ) -> None:
        super().__init__(data_info, likelihood)
        net = dict(net or {"kind": "mlp"})
        dims = [int(latent_dim)] if isinstance(latent_dim, int) else [int(d) for d in latent_dim]
        between = [[int(h) for h in hidden] for hidden in between]
        if init not in INITS:
            raise ConfigError(f"model.init={init!r} is not one of {', '.join(INITS)}; e.g. model.init=glorot")
        if len(between) != len(dims) - 1 or not all(between):
            raise ConfigError(
                f"model.between lists {len(between)} hidden-layer lists for {len(dims)} latent layers; "
                f"give {len(dims) - 1} non-empty lists, e.g. model.between=[[50,50]] for latent_dim=[100,50]"
            )
        act = net.get("act", "relu")
        self.latent_dims = dims
        encoder = build_encoder(net, data_info.shape)
        # up[l]: q(z_{l+1} | z_l) (up[0] is q(z1 | x)); down[l]: p(z_{l+1} | z_{l+2}) for l < L-1.
        self.up = nn.ModuleList([GaussianHead(encoder, encoder.out_features, dims[0])])
        self.up.extend(
            gaussian_mlp([d, *h], d_up, act) for d, h, d_up in zip(dims, between, dims[1:], strict=False)
        )
        self.down = nn.ModuleList(
            gaussian_mlp([d_up, *reversed(h)], d, act)
            for d, h, d_up in zip(dims, between, dims[1:], strict=False)
        )
        out_channels = likelihood.out_channels(data_info.shape[0])
        self.decoder = build_decoder(net, dims[0], data_info.shape, out_channels)
        if init == "glorot":
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.xavier_uniform_(module.weight)
                    nn.init.zeros_(module.bias)

    def infer(self, x: Tensor, mode: str = "sample", repeats: int = 1) -> list[tuple[Tensor, Tensor, Tensor]]:
        """Climb the stack: per layer from z1 up, (z, mu_q, logvar_q); z is the mean when mode='mean'.

        ``repeats`` > 1 draws that many joint samples per example (sample-major, [repeats * B, D]).
        """
        mu, logvar = self.up[0](x)
        if repeats > 1:
            mu, logvar = mu.repeat(repeats, 1), logvar.repeat(repeats, 1)
        layers = []
        for i, head in enumerate(self.up):
            if i:
                mu, logvar = head(layers[-1][0])
            layers.append((mu if mode == "mean" else draw(mu, logvar), mu, logvar))
        return layers

    def log_prior_terms(self, zs: Sequence[Tensor]) -> list[Tensor]:
        """log p(z_l | z_{l+1}) per dimension for every layer below the top, z1 first: each [B, D_l]."""
        return [
            gaussian_log_density(z, *head(z_up)) for z, z_up, head in zip(zs, zs[1:], self.down, strict=False)
        ]

    def ancestral(self, n: int) -> list[Tensor]:
        """Prior samples of every layer, z1 first (z_L ~ N(0, I), then down the stack)."""
        zs = [torch.randn(n, self.latent_dims[-1], device=self.device)]
        for head in reversed(self.down):
            zs.insert(0, draw(*head(zs[0])))
        return zs

    # -- the common interface -------------------------------------------------------------------
    def encode(self, x: Tensor, y: Tensor | None = None) -> Normal:
        """q(z1 | x), the layer the decoder reads."""
        mu, logvar = self.up[0](x)
        return Normal(mu, torch.exp(0.5 * logvar))

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Likelihood parameters from z1 [B, D_1]."""
        return self.decoder(z)

    def elbo_terms(self, x: Tensor, y: Tensor | None = None) -> ELBOTerms:
        layers = [tuple(t.float() for t in layer) for layer in self.infer(x)]
        zs = [z for z, _, _ in layers]
        log_px_z = self.likelihood.log_prob(self.decoder(zs[0]), x)
        kl = {
            f"z{i + 1}": gaussian_log_density(z, mu_q, lv_q) - log_p.float()
            for i, ((z, mu_q, lv_q), log_p) in enumerate(zip(layers, self.log_prior_terms(zs), strict=False))
        }
        _, mu_top, lv_top = layers[-1]
        kl[f"z{len(layers)}"] = gaussian_kl(mu_top, lv_top)
        return ELBOTerms(log_px_z=log_px_z, kl=kl)

    def log_importance_weights(self, x: Tensor, y: Tensor | None = None, k: int = 1) -> Tensor:
        """log p(x|z1) + Σ_l log p(z_l|z_{l+1}) + log p(z_L) − Σ_l log q(z_l|·), k joint samples: [k, B]."""
        b = x.shape[0]
        layers = [tuple(t.float() for t in layer) for layer in self.infer(x, repeats=k)]
        zs = [z for z, _, _ in layers]
        params = self.decoder(zs[0])
        log_w = self.likelihood.log_prob_samples(params.view(k, b, *params.shape[1:]), x).flatten()
        for log_p in self.log_prior_terms(zs):
            log_w = log_w + log_p.float().sum(1)
        log_w = log_w + standard_normal_log_prob(zs[-1])
        for z, mu_q, lv_q in layers:
            log_w = log_w - gaussian_log_prob(z, mu_q, lv_q)
        return log_w.view(k, b)

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | None = None) -> Tensor:
        return self.likelihood.mean(self.decoder(self.ancestral(n)[0]))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.likelihood.mean(self.decoder(self.up[0](x)[0]))

    def latent_layers(self) -> list[tuple[str, int]]:
        return [(f"z{i + 1}", d) for i, d in enumerate(self.latent_dims)]

    @torch.no_grad()
    def representation(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Posterior means of every layer, each computed from the mean below it: [B, Σ_l D_l]."""
        return torch.cat([mu for _, mu, _ in self.infer(x, mode="mean")], dim=1)

    def sample_representation(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """One joint draw of every layer up the stack, concatenated as :meth:`representation`."""
        return torch.cat([z for z, _, _ in self.infer(x, mode="sample")], dim=1)

    @torch.no_grad()
    def decode_latent(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Decode flat [B, Σ_l D_l] latents: x depends on z1 only (the layers above shape z1's prior)."""
        return self.likelihood.mean(self.decoder(z[:, : self.latent_dims[0]]))

    @torch.no_grad()
    def prior_latents(self, n: int, y: Tensor | None = None) -> Tensor:
        return torch.cat(self.ancestral(n), dim=1)

    @torch.no_grad()
    def kl_per_dim(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return torch.cat(list(self.elbo_terms(x, y).kl.values()), dim=1)
