"""A hierarchical VAE with L stochastic layers and top-down inference.

Ladder VAE (Sønderby et al. 2016) in the bidirectional residual form of NVAE (Vahdat & Kautz 2020)
and VDVAE (Child 2021): a bottom-up pass computes features h_1..h_L; a top-down pass, starting
from a learned state, visits layers L..1, where the prior p(z_l | z_>l) is read from the top-down
state s and the posterior q(z_l | x, z_>l) from [s, h_l] as a residual correction of the prior;
each sample z_l is added back into s. The decoder reads the final state.

Stability measures: means and log-variances are soft-clamped (c·tanh(v / c)), the output layers of every
residual branch and prior head start at zero (each cell starts as the identity, each lower prior as
N(0, I)), and the config sets ``grad_skip_threshold`` so updates with a huge or non-finite gradient norm
are skipped, as VDVAE does. KL is reported per layer as groups ``z1`` (bottom) … ``zL`` (top);
KL warm-up and free bits (``kl=free_bits kl.per=group``) apply to each group.

``net.kind=mlp`` gives vector latents (28×28 images); ``net.kind=conv`` gives latent feature
maps at the conv trunk's resolution (colour images).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.likelihoods import Likelihood
from vaezoo.models import register
from vaezoo.models.base import ELBOTerms, VAEModel
from vaezoo.models.gaussian import gaussian_kl_two, gaussian_log_prob, soft_clamp
from vaezoo.nets import build_decoder, build_encoder
from vaezoo.nets.conv import ConvTrunk, ConvUpTrunk
from vaezoo.nets.mlp import activation

MEAN_BOUND = 10.0  # latent means are soft-clamped to (−10, 10), log-variances to ±logvar_bound


class Ops:
    """Layers for vector states (mlp) or feature-map states (conv), so one model serves both."""

    def __init__(self, conv: bool, act: str) -> None:
        self.conv, self.act = conv, act

    def layer(self, cin: int, cout: int, zero: bool = False) -> nn.Module:
        m = nn.Conv2d(cin, cout, 3, 1, 1) if self.conv else nn.Linear(cin, cout)
        if zero:
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        return m

    def mlp(self, cin: int, hidden: int, cout: int, zero_last: bool = False) -> nn.Sequential:
        return nn.Sequential(
            self.layer(cin, hidden), activation(self.act), self.layer(hidden, cout, zero=zero_last)
        )


class Residual(nn.Module):
    def __init__(self, ops: Ops, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(activation(ops.act), ops.mlp(width, width, width, zero_last=True))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class TopDownLayer(nn.Module):
    """One stochastic layer: prior from the state, posterior from [state, bottom-up features]."""

    def __init__(self, ops: Ops, width: int, latent_dim: int, top: bool, logvar_bound: float) -> None:
        super().__init__()
        self.top, self.logvar_bound = top, logvar_bound
        self.prior = None if top else ops.mlp(width, width, 2 * latent_dim, zero_last=True)
        # One layer, default initialisation: a deeper or zero-initialised posterior head learned far
        # more slowly on MNIST (about 20 nats worse after 400 steps).
        self.posterior = ops.layer(2 * width, 2 * latent_dim)
        self.z_proj = ops.layer(latent_dim, width)
        self.res = Residual(ops, width)
        self.latent_dim = latent_dim

    def prior_params(self, s: Tensor) -> tuple[Tensor, Tensor]:
        if self.prior is None:  # the top layer's prior is N(0, I)
            shape = (s.shape[0], self.latent_dim, *s.shape[2:])
            zeros = torch.zeros(shape, device=s.device, dtype=s.dtype)
            return zeros, zeros
        mu, logvar = self.prior(s).chunk(2, dim=1)
        return soft_clamp(mu, MEAN_BOUND), soft_clamp(logvar, self.logvar_bound)

    def posterior_params(self, s: Tensor, h: Tensor, mu_p: Tensor, logvar_p: Tensor) -> tuple[Tensor, Tensor]:
        d_mu, d_logvar = self.posterior(torch.cat([s, h], dim=1)).chunk(2, dim=1)
        return soft_clamp(mu_p + d_mu, MEAN_BOUND), soft_clamp(logvar_p + d_logvar, self.logvar_bound)

    def update(self, s: Tensor, z: Tensor) -> Tensor:
        return self.res(s + self.z_proj(z))


@register("hvae")
class HierarchicalVAE(VAEModel):
    """L Gaussian latent layers ``z1`` (closest to x) … ``zL`` (top, N(0, I) prior), top-down inference."""

    importance_weighted = True

    def __init__(
        self,
        data_info: DataInfo,
        likelihood: Likelihood,
        num_layers: int = 3,
        latent_dim: int | Sequence[int] = 16,
        width: int = 256,
        net: Mapping[str, Any] | None = None,
        logvar_bound: float = 8.0,
    ) -> None:
        super().__init__(data_info, likelihood)
        net = dict(net or {"kind": "mlp"})
        if num_layers < 1:
            raise ConfigError(f"model.num_layers must be >= 1, got {num_layers}")
        dims = [int(latent_dim)] * num_layers if isinstance(latent_dim, int) else [int(d) for d in latent_dim]
        if len(dims) != num_layers:
            raise ConfigError(f"model.latent_dim lists {len(dims)} sizes for num_layers={num_layers}")
        kind = net.get("kind", "mlp")
        act = net.get("act", "relu")
        out_channels = likelihood.out_channels(data_info.shape[0])
        self.num_layers, self.latent_dims, self.width = num_layers, dims, width
        self.conv = kind == "conv"
        ops = Ops(self.conv, act)
        if self.conv:
            channels = list(net.get("channels", (32, 64, 128)))
            trunk = ConvTrunk(data_info.shape, channels, act)
            self.state_shape: tuple[int, ...] = (width, *trunk.out_shape[1:])
            self.encoder = nn.Sequential(trunk, nn.Conv2d(trunk.out_shape[0], width, 1))
            up = ConvUpTrunk(data_info.shape, out_channels, channels[::-1], act)
            self.decoder = nn.Sequential(
                activation(act), nn.Conv2d(width, up.in_shape[0], 3, 1, 1), activation(act), up
            )
        else:
            trunk = build_encoder(net, data_info.shape)
            self.state_shape = (width,)
            self.encoder = nn.Sequential(trunk, nn.Linear(trunk.out_features, width))
            self.decoder = nn.Sequential(
                activation(act), build_decoder(net, width, data_info.shape, out_channels)
            )
        self.bottom_up = nn.ModuleList([Residual(ops, width) for _ in range(num_layers)])
        # top_down[i] is layer i+1 (z_{i+1}); the pass runs from the top (i = L-1) down to 0.
        self.top_down = nn.ModuleList(
            [
                TopDownLayer(ops, width, d, top=(i == num_layers - 1), logvar_bound=logvar_bound)
                for i, d in enumerate(dims)
            ]
        )
        self.initial_state = nn.Parameter(torch.zeros(self.state_shape))

    @classmethod
    def check_compatible(cls, data_info: DataInfo, likelihood: Likelihood, name: str) -> None:
        pass

    def features(self, x: Tensor) -> list[Tensor]:
        """Bottom-up features h_1..h_L."""
        h = self.encoder(x)
        out = []
        for block in self.bottom_up:
            h = block(h)
            out.append(h)
        return out

    def start(self, n: int) -> Tensor:
        return self.initial_state.unsqueeze(0).expand(n, *self.state_shape)

    def infer(
        self, x: Tensor, mode: str = "sample", repeats: int = 1
    ) -> tuple[Tensor, list[tuple[Tensor, ...]]]:
        """Top-down inference. mode: 'sample' (z ~ q) or 'mean' (z = posterior mean).

        ``repeats`` > 1 draws that many samples per example (the bottom-up pass runs once; the
        batch becomes [repeats * B], sample-major). Returns the decoder output and, per layer from
        z1 up, (z, mu_q, logvar_q, mu_p, logvar_p).
        """
        hs = self.features(x)
        if repeats > 1:
            hs = [h.repeat(repeats, *([1] * (h.dim() - 1))) for h in hs]
        s = self.start(hs[0].shape[0])
        layers: list[tuple[Tensor, ...]] = []
        for layer, h in zip(reversed(self.top_down), reversed(hs), strict=True):
            mu_p, logvar_p = layer.prior_params(s)
            mu_q, logvar_q = layer.posterior_params(s, h, mu_p, logvar_p)
            z = mu_q if mode == "mean" else mu_q + torch.randn_like(mu_q) * torch.exp(0.5 * logvar_q)
            s = layer.update(s, z)
            layers.append((z, mu_q, logvar_q, mu_p, logvar_p))
        return self.decoder(s), layers[::-1]

    # -- the common interface -------------------------------------------------------------------
    def encode(self, x: Tensor, y: Tensor | None = None) -> torch.distributions.Normal:
        """The top layer's posterior q(z_L | x) (lower layers depend on the samples above them)."""
        _, layers = self.infer(x, mode="mean")
        _, mu, logvar, _, _ = layers[-1]
        return torch.distributions.Normal(mu, torch.exp(0.5 * logvar))

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Likelihood parameters from a top-down state (what the decoder reads after the last layer)."""
        return self.decoder(z)

    def elbo_terms(self, x: Tensor, y: Tensor | None = None) -> ELBOTerms:
        params, layers = self.infer(x)
        log_px_z = self.likelihood.log_prob(params, x)
        kl = {
            f"z{i + 1}": gaussian_kl_two(mu_q.float(), lv_q.float(), mu_p.float(), lv_p.float()).flatten(1)
            for i, (_, mu_q, lv_q, mu_p, lv_p) in enumerate(layers)
        }
        return ELBOTerms(log_px_z=log_px_z, kl=kl)

    def log_importance_weights(self, x: Tensor, y: Tensor | None = None, k: int = 1) -> Tensor:
        """log p(x|z) + Σ_l [log p(z_l|z_>l) − log q(z_l|x, z_>l)] for k joint samples: [k, B]."""
        b = x.shape[0]
        params, layers = self.infer(x, repeats=k)
        log_w = self.likelihood.log_prob_samples(params.view(k, b, *params.shape[1:]), x).flatten()
        for z, mu_q, lv_q, mu_p, lv_p in layers:
            z, mu_q, lv_q, mu_p, lv_p = (t.float() for t in (z, mu_q, lv_q, mu_p, lv_p))
            log_w = log_w + gaussian_log_prob(z, mu_p, lv_p) - gaussian_log_prob(z, mu_q, lv_q)
        return log_w.view(k, b)

    def _ancestral(self, n: int, temperature: float = 1.0) -> tuple[Tensor, list[Tensor]]:
        """Top-down prior samples: the final state and each layer's z, from z1 up."""
        s = self.start(n)
        zs = []
        for layer in reversed(self.top_down):
            mu_p, logvar_p = layer.prior_params(s)
            z = mu_p + temperature * torch.randn_like(mu_p) * torch.exp(0.5 * logvar_p)
            s = layer.update(s, z)
            zs.append(z)
        return s, zs[::-1]

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | None = None, temperature: float = 1.0) -> Tensor:
        return self.likelihood.mean(self.decoder(self._ancestral(n, temperature)[0]))

    def latent_shapes(self) -> list[tuple[int, ...]]:
        """Per-layer latent shape (without batch), from z1 up, as laid out in :meth:`representation`."""
        s = self.start(1)
        shapes = []
        for layer in reversed(self.top_down):
            mu_p, _ = layer.prior_params(s)
            shapes.append(tuple(mu_p.shape[1:]))
            s = layer.update(s, mu_p)
        return shapes[::-1]

    def latent_layers(self) -> list[tuple[str, int]]:
        return [(f"z{i + 1}", math.prod(shape)) for i, shape in enumerate(self.latent_shapes())]

    @torch.no_grad()
    def decode_latent(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Decode flat [B, Σ_l D_l] latents (z1 first) by running the top-down path with each z_l fixed."""
        shapes = self.latent_shapes()
        sizes = [math.prod(shape) for shape in shapes]
        parts = [
            p.reshape(z.shape[0], *shape) for p, shape in zip(z.split(sizes, dim=1), shapes, strict=True)
        ]
        s = self.start(z.shape[0])
        for layer, z_l in zip(reversed(self.top_down), reversed(parts), strict=True):
            s = layer.update(s, z_l)
        return self.likelihood.mean(self.decoder(s))

    @torch.no_grad()
    def prior_latents(self, n: int, y: Tensor | None = None) -> Tensor:
        return torch.cat([z.flatten(1) for z in self._ancestral(n)[1]], dim=1)

    @torch.no_grad()
    def kl_per_dim(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return torch.cat(list(self.elbo_terms(x, y).kl.values()), dim=1)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        params, _ = self.infer(x, mode="mean")
        return self.likelihood.mean(params)

    @torch.no_grad()
    def representation(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Posterior means of every layer (top-down with means), concatenated: [B, Σ_l D_l]."""
        _, layers = self.infer(x, mode="mean")
        return torch.cat([mu_q.flatten(1) for _, mu_q, _, _, _ in layers], dim=1)

    def sample_representation(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """One joint top-down draw of every layer, concatenated as :meth:`representation`."""
        _, layers = self.infer(x, mode="sample")
        return torch.cat([z.flatten(1) for z, _, _, _, _ in layers], dim=1)
