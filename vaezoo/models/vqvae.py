"""VQ-VAE (van den Oord et al. 2017): a spatial grid of discrete codes from a learned codebook.

Training follows the paper: the encoder output z_e is snapped to its nearest codebook vector, the
decoder's gradient is copied straight through to z_e, the codebook is pulled towards z_e (codebook
loss ‖sg[z_e] − e‖², or exponential moving averages with ``codebook_update=ema``) and z_e towards
its code (commitment β‖z_e − sg[e]‖², β = ``commitment``). Both losses are ``extra`` terms, not
part of the ELBO. With the uniform prior over K codes the posterior is a point mass and
KL = log K per latent position, so the ELBO (and bits/dim) is reported as the paper does; for the
same reason the importance-weighted bound equals the ELBO.

``quantizer=fsq`` replaces the codebook by finite scalar quantisation (Mentzer et al. 2023): the
encoder projects to len(``fsq_levels``) channels, each bounded by tanh to its L levels, rounded with a
straight-through gradient and scaled to [-1, 1]. The implicit codebook is the grid of prod(levels)
points, indexed in mixed radix, so the PixelCNN prior and the code-usage statistics work unchanged;
there is no codebook and no commitment loss (no ``extra`` terms).

``quantizer=rvq`` is residual VQ (Zeghidour et al. 2021, SoundStream; Lee et al. 2022): ``rvq_levels``
codebooks of ``num_codes`` vectors each, stage s quantising what the stages before it left,
r_s = z_e − Σ_{t<s} e_t, and z_q = Σ_s e_s. Each stage has its own codebook and commitment losses on its
residual (``vq/stage<s>/…``; EMA updates and dead-code restarts per codebook) and logs its own code
usage and perplexity. A position holds S codes, [B, S, h, w]; the uniform-prior KL is S·log K per
position, and the PixelCNN prior models the S codes of each position in turn (see
:class:`~vaezoo.models.pixelcnn.PixelCNNPrior`, ``stages``).

Sampling needs a learned prior over codes, trained afterwards on a finished run with
``python -m vaezoo.prior run=<job folder>`` (see :mod:`vaezoo.stages.prior`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.likelihoods import Likelihood
from vaezoo.models import register
from vaezoo.models.base import ELBOTerms, VAEModel
from vaezoo.models.pixelcnn import PixelCNNPrior
from vaezoo.nets.conv import ConvTrunk, ConvUpTrunk
from vaezoo.nets.mlp import activation

CODEBOOK_UPDATES = ("loss", "ema")
QUANTIZERS = ("vq", "fsq", "rvq")
#: Codebook settings with their defaults: FSQ has no codebook, so a non-default value is a mistake.
CODEBOOK_SETTINGS = {
    "commitment": 0.25,
    "codebook_update": "loss",
    "ema_decay": 0.99,
    "restart_every": 100,
    "restart_threshold": 1.0,
}


class ResBlock(nn.Module):
    def __init__(self, channels: int, act: str) -> None:
        super().__init__()
        self.net = nn.Sequential(
            activation(act),
            nn.Conv2d(channels, channels, 3, 1, 1),
            activation(act),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


def code_stats(counts: Tensor, prefix: str = "vq/") -> dict[str, Tensor]:
    """Perplexity (exp of the usage entropy) and the fraction of codes used, from code counts [K]."""
    p = counts / counts.sum()
    return {
        f"{prefix}perplexity": torch.exp(-(p * torch.log(p.clamp(min=1e-10))).sum()),
        f"{prefix}codes_used": (counts > 0).float().mean(),
    }


def straight_through(z_e: Tensor, z_q: Tensor) -> Tensor:
    """z_q forward, identity gradient to z_e backward (the VQ-VAE's gradient copy)."""
    return z_e + (z_q - z_e).detach()


def round_ste(z: Tensor) -> Tensor:
    """round(z) forward, identity gradient backward (straight-through)."""
    return z + (torch.round(z) - z).detach()


class FiniteScalarQuantizer(nn.Module):
    """Finite scalar quantisation (Mentzer et al. 2023) of [B, d, H, W], d = len(levels).

    Channel i is bounded to L_i levels, ``tanh(z + shift)·half_l − offset`` with half_l = (L−1)(1+ε)/2
    and, for even L, offset 1/2 and shift atanh(offset/half_l), which maps 0 to 0 (the paper's
    reference code writes tan(offset/half_l), equal to third order); then rounded with a
    straight-through gradient and divided by L//2: the codes are the grid {−L//2, …, L−1−L//2}/(L//2)
    per channel, inside [−1, 1]. Code index = Σ_i (code_i + L_i//2)·basis_i,
    basis = (1, L_0, L_0·L_1, …), a bijection between the grid and 0..prod(L)−1.
    """

    def __init__(self, levels: Sequence[int], eps: float = 1e-3) -> None:
        super().__init__()
        levels = [int(v) for v in levels]
        if not levels or any(v < 2 for v in levels):
            raise ConfigError(
                f"model.fsq_levels={levels} must be a non-empty list of integers >= 2, e.g. [8,5,5,5]"
            )
        self.num_codes, self.code_dim = math.prod(levels), len(levels)
        lv = torch.tensor(levels, dtype=torch.float64)
        half_l = (lv - 1) * (1 + eps) / 2
        offset = torch.where(lv % 2 == 1, 0.0, 0.5)
        basis = torch.cumprod(torch.tensor([1, *levels[:-1]], dtype=torch.long), 0)
        self.register_buffer("half_l", half_l.float(), persistent=False)
        self.register_buffer("offset", offset.float(), persistent=False)
        self.register_buffer("shift", torch.atanh(offset / half_l).float(), persistent=False)
        self.register_buffer("half_width", (lv // 2).float(), persistent=False)
        self.register_buffer("levels", torch.tensor(levels, dtype=torch.long), persistent=False)
        self.register_buffer("basis", basis, persistent=False)

    def bound(self, z: Tensor) -> Tensor:
        """Channels-last z [..., d] squashed so that rounding gives L_i values per channel."""
        return torch.tanh(z + self.shift) * self.half_l - self.offset

    def unbound(self, z_q: Tensor) -> Tensor:
        """A channels-last encoder output [..., d] that :meth:`bound` and rounding take to grid points z_q."""
        return torch.atanh((z_q * self.half_width + self.offset) / self.half_l) - self.shift

    def quantize(self, z: Tensor) -> Tensor:
        """Channels-last z [..., d] to grid points in [-1, 1], straight-through."""
        return round_ste(self.bound(z)) / self.half_width

    def codes_to_indices(self, z_q: Tensor) -> Tensor:
        """Channels-last grid points [..., d] to indices [...] in 0..num_codes-1."""
        digits = torch.round(z_q.float() * self.half_width + self.half_width).long()
        return (digits * self.basis).sum(-1)

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """Indices [...] to channels-last grid points [..., d]."""
        digits = torch.div(indices.long().unsqueeze(-1), self.basis, rounding_mode="floor") % self.levels
        return (digits.float() - self.half_width) / self.half_width

    def forward(self, z_e: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Quantised z_q [B, d, H, W] (straight-through w.r.t. z_e via the bound), codes [B, H, W], stats."""
        z = z_e.float().permute(0, 2, 3, 1)
        z_q = self.quantize(z)
        codes = self.codes_to_indices(z_q.detach())
        counts = torch.bincount(codes.flatten(), minlength=self.num_codes).float()
        return z_q.permute(0, 3, 1, 2).to(z_e.dtype), codes, code_stats(counts)

    def lookup(self, codes: Tensor) -> Tensor:
        """The grid points [B, d, H, W] of code grids [B, H, W]."""
        return self.indices_to_codes(codes).permute(0, 3, 1, 2)


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantisation of [B, D, H, W] to K codebook vectors, with dead-code restarts.

    ``update="loss"`` learns the codebook by gradient (codebook loss); ``update="ema"`` keeps it as
    exponential moving averages of the encoder outputs assigned to each code (no codebook loss).
    Every ``restart_every`` training steps, codes used fewer than ``restart_threshold`` times since
    the last check are moved onto randomly chosen encoder outputs of the current batch.
    """

    def __init__(
        self,
        num_codes: int,
        code_dim: int,
        update: str = "loss",
        ema_decay: float = 0.99,
        restart_every: int = 100,
        restart_threshold: float = 1.0,
    ) -> None:
        super().__init__()
        if update not in CODEBOOK_UPDATES:
            raise ConfigError(
                f"model.codebook_update={update!r} must be one of {', '.join(CODEBOOK_UPDATES)}"
            )
        if not 0 < ema_decay < 1:
            raise ConfigError(f"model.ema_decay must be in (0, 1), got {ema_decay}")
        self.num_codes, self.code_dim, self.update = num_codes, code_dim, update
        self.ema_decay, self.restart_every, self.restart_threshold = (
            ema_decay,
            restart_every,
            restart_threshold,
        )
        self.codebook = nn.Parameter(torch.empty(num_codes, code_dim).uniform_(-1 / num_codes, 1 / num_codes))
        self.codebook.requires_grad_(update == "loss")
        if update == "ema":
            self.register_buffer("ema_count", torch.ones(num_codes))
            self.register_buffer("ema_sum", self.codebook.detach().clone())
        self.register_buffer("usage", torch.zeros(num_codes))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def nearest(self, flat: Tensor) -> Tensor:
        """Index of the nearest code for each row of flat [N, D]."""
        e = self.codebook.float()
        dist = flat.float().square().sum(1, keepdim=True) - 2 * flat.float() @ e.t() + e.square().sum(1)
        return dist.argmin(1)

    def forward(self, z_e: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Quantised z_q [B, D, H, W] (codebook rows, differentiable w.r.t. the codebook), codes, stats."""
        b, d, h, w = z_e.shape
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)
        codes = self.nearest(flat.detach())
        counts = torch.bincount(codes, minlength=self.num_codes).float()
        if self.training:
            self.train_step(flat.detach().float(), codes, counts)
        z_q = self.codebook[codes].view(b, h, w, d).permute(0, 3, 1, 2).to(z_e.dtype)
        return z_q, codes.view(b, h, w), code_stats(counts)

    def lookup(self, codes: Tensor) -> Tensor:
        """The code vectors [B, D, H, W] of code grids [B, H, W]."""
        return self.codebook[codes].permute(0, 3, 1, 2)

    @torch.no_grad()
    def train_step(self, flat: Tensor, codes: Tensor, counts: Tensor) -> None:
        """EMA and restart bookkeeping; under DDP, counts and sums are summed over all processes and
        restarted codes come from process 0, so every replica keeps the same codebook."""
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if distributed:
            counts = counts.clone()
            torch.distributed.all_reduce(counts)
        if self.update == "ema":
            decay = self.ema_decay
            sums = torch.zeros_like(self.ema_sum).index_add_(0, codes, flat)
            if distributed:
                torch.distributed.all_reduce(sums)
            self.ema_count.mul_(decay).add_(counts, alpha=1 - decay)
            self.ema_sum.mul_(decay).add_(sums, alpha=1 - decay)
            n = self.ema_count.sum()
            smoothed = (self.ema_count + 1e-5) / (n + self.num_codes * 1e-5) * n  # Laplace smoothing
            self.codebook.data.copy_(self.ema_sum / smoothed.unsqueeze(1))
        self.usage.add_(counts)
        self.steps.add_(1)
        if self.restart_every > 0 and int(self.steps) % self.restart_every == 0:
            dead = self.usage < self.restart_threshold
            n_dead = int(dead.sum())
            if n_dead:
                picks = flat[torch.randint(len(flat), (n_dead,), device=flat.device)]
                if distributed:
                    torch.distributed.broadcast(picks, src=0)
                self.codebook.data[dead] = picks
                if self.update == "ema":
                    self.ema_sum[dead] = picks
                    self.ema_count[dead] = 1.0
            self.usage.zero_()


class ResidualVectorQuantizer(nn.Module):
    """``stages`` :class:`VectorQuantizer` s in sequence, each quantising the residual the ones before left.

    The residual passed on is detached (r_{s+1} = r_s − sg[e_s]), so stage s's commitment loss
    ‖r_s − sg[e_s]‖² pulls the encoder towards Σ_{t≤s} e_t and its codebook loss moves codebook s only.
    """

    def __init__(self, stages: int, num_codes: int, code_dim: int, **codebook: object) -> None:
        super().__init__()
        if stages < 1:
            raise ConfigError(f"model.rvq_levels must be an integer >= 1, got {stages}")
        self.num_codes, self.code_dim = num_codes, code_dim
        self.stages = nn.ModuleList(
            VectorQuantizer(num_codes, code_dim, **codebook)  # type: ignore[arg-type]
            for _ in range(stages)
        )
        self.update = self.stages[0].update

    def quantize_stages(self, z_e: Tensor) -> list[tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]]:
        """Per stage: its input residual r_s, its code vectors e_s, codes [B, h, w] and its usage stats."""
        out, residual = [], z_e
        for s, stage in enumerate(self.stages, start=1):
            z_q, codes, stats = stage(residual)
            stats = {k.replace("vq/", f"vq/stage{s}/"): v for k, v in stats.items()}
            out.append((residual, z_q, codes, stats))
            residual = residual - z_q.detach()
        return out

    def forward(self, z_e: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Σ_s e_s [B, D, H, W] (differentiable w.r.t. the codebooks), codes [B, S, H, W], per-stage stats."""
        per_stage = self.quantize_stages(z_e)
        z_q = torch.stack([e for _, e, _, _ in per_stage]).sum(0)
        codes = torch.stack([c for _, _, c, _ in per_stage], dim=1)
        stats = {k: v for *_, st in per_stage for k, v in st.items()}
        return z_q, codes, stats

    def lookup(self, codes: Tensor) -> Tensor:
        """Σ_s e_s [B, D, H, W] of code grids [B, S, H, W]."""
        return torch.stack([stage.lookup(codes[:, s]) for s, stage in enumerate(self.stages)]).sum(0)


@register("vqvae")
class VQVAE(VAEModel):
    """Convolutional encoder -> [code_dim, h, w] grid -> nearest of ``num_codes`` codes -> decoder.

    With ``quantizer="fsq"`` the grid has len(``fsq_levels``) channels quantised by
    :class:`FiniteScalarQuantizer`; num_codes and code_dim then follow from the levels (prod, len) and
    the codebook settings (commitment, codebook_update, ema_decay, restarts) must keep their defaults
    (a ConfigError names one that does not). With ``quantizer="rvq"`` it is :class:`ResidualVectorQuantizer`
    with ``rvq_levels`` codebooks of ``num_codes`` codes.
    """

    def __init__(
        self,
        data_info: DataInfo,
        likelihood: Likelihood,
        num_codes: int = 128,
        code_dim: int = 32,
        channels: Sequence[int] = (32, 64),
        res_blocks: int = 1,
        commitment: float = 0.25,
        codebook_update: str = "loss",
        ema_decay: float = 0.99,
        restart_every: int = 100,
        restart_threshold: float = 1.0,
        act: str = "relu",
        quantizer: str = "vq",
        fsq_levels: Sequence[int] = (8, 5, 5, 5),
        rvq_levels: int = 2,
    ) -> None:
        super().__init__(data_info, likelihood)
        if quantizer not in QUANTIZERS:
            raise ConfigError(f"model.quantizer={quantizer!r} must be one of {', '.join(QUANTIZERS)}")
        if quantizer == "fsq":
            given = {
                "commitment": commitment,
                "codebook_update": codebook_update,
                "ema_decay": ema_decay,
                "restart_every": restart_every,
                "restart_threshold": restart_threshold,
            }
            for key, default in CODEBOOK_SETTINGS.items():
                if given[key] != default:
                    raise ConfigError(
                        f"model.{key}={given[key]} has no effect with model.quantizer=fsq (no codebook); "
                        f"leave it at {default} or use model.quantizer=vq or rvq"
                    )
        fsq = FiniteScalarQuantizer(fsq_levels) if quantizer == "fsq" else None
        if fsq is not None:
            num_codes, code_dim = fsq.num_codes, fsq.code_dim
        if num_codes < 2 or code_dim < 1:
            raise ConfigError(
                f"model.num_codes must be >= 2 and model.code_dim >= 1, got {num_codes}, {code_dim}"
            )
        if commitment < 0:
            raise ConfigError(f"model.commitment must be >= 0, got {commitment}")
        self.num_codes, self.code_dim, self.commitment = num_codes, code_dim, commitment
        channels = list(channels)
        trunk = ConvTrunk(data_info.shape, channels, act)
        c, h, w = trunk.out_shape
        self.grid = (h, w)
        self.encoder = nn.Sequential(
            trunk, *[ResBlock(c, act) for _ in range(res_blocks)], activation(act), nn.Conv2d(c, code_dim, 1)
        )
        up = ConvUpTrunk(data_info.shape, likelihood.out_channels(data_info.shape[0]), channels[::-1], act)
        self.decoder = nn.Sequential(
            nn.Conv2d(code_dim, up.in_shape[0], 3, 1, 1),
            *[ResBlock(up.in_shape[0], act) for _ in range(res_blocks)],
            activation(act),
            up,
        )
        self.quantizer: VectorQuantizer | FiniteScalarQuantizer | ResidualVectorQuantizer
        #: codes per grid position: one, or one per residual stage
        self.code_stages = rvq_levels if quantizer == "rvq" else 1
        if fsq is not None:
            self.quantizer = fsq
        elif quantizer == "rvq":
            self.quantizer = ResidualVectorQuantizer(
                rvq_levels,
                num_codes,
                code_dim,
                update=codebook_update,
                ema_decay=ema_decay,
                restart_every=restart_every,
                restart_threshold=restart_threshold,
            )
        else:
            self.quantizer = VectorQuantizer(
                num_codes, code_dim, codebook_update, ema_decay, restart_every, restart_threshold
            )
        self.prior: PixelCNNPrior | None = None

    @classmethod
    def check_compatible(cls, data_info: DataInfo, likelihood: Likelihood, name: str) -> None:
        if data_info.shape[1] < 8:
            raise ConfigError(f"model={name} needs images of at least 8x8 pixels, got {data_info.shape}")

    # -- the common interface -------------------------------------------------------------------
    def encode(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The continuous encoder output z_e: [B, code_dim, h, w]."""
        return self.encoder(x)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.decoder(z)

    def quantize(self, z_e: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        return self.quantizer(z_e)

    def rvq_losses(
        self, per_stage: list[tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]]
    ) -> dict[str, Tensor]:
        """Each residual stage's commitment (and, with update=loss, codebook) loss per example."""
        extra = {}
        for s, (residual, e, _, _) in enumerate(per_stage, start=1):
            r, e = residual.float(), e.float()
            extra[f"vq/stage{s}/commitment"] = self.commitment * (r - e.detach()).square().flatten(1).sum(1)
            if self.quantizer.update == "loss":
                extra[f"vq/stage{s}/codebook"] = (e - r.detach()).square().flatten(1).sum(1)
        return extra

    def elbo_terms(self, x: Tensor, y: Tensor | None = None) -> ELBOTerms:
        z_e = self.encode(x)
        per_stage: list = []
        if isinstance(self.quantizer, ResidualVectorQuantizer):
            per_stage = self.quantizer.quantize_stages(z_e)
            z_q = torch.stack([e for _, e, _, _ in per_stage]).sum(0)
            stats = {k: v for *_, st in per_stage for k, v in st.items()}
        else:
            z_q, _, stats = self.quantize(z_e)
        fsq = isinstance(self.quantizer, FiniteScalarQuantizer)
        # straight-through: decoder gradients go to z_e (FSQ: rounding is straight-through inside the
        # quantiser, so gradients pass through its tanh bound)
        z_st = z_q if fsq else straight_through(z_e, z_q)
        log_px_z = self.likelihood.log_prob(self.decode(z_st), x)
        b = x.shape[0]
        positions = self.grid[0] * self.grid[1]
        kl = torch.full((b, positions), self.code_stages * math.log(self.num_codes), device=x.device)
        if fsq:  # no codebook: no codebook or commitment loss
            return ELBOTerms(log_px_z=log_px_z, kl={"codes": kl}, extra={}, stats=stats)
        if isinstance(self.quantizer, ResidualVectorQuantizer):
            return ELBOTerms(
                log_px_z=log_px_z, kl={"codes": kl}, extra=self.rvq_losses(per_stage), stats=stats
            )
        commitment = self.commitment * (z_e.float() - z_q.detach().float()).square().flatten(1).sum(1)
        extra = {"vq/commitment": commitment}
        if self.quantizer.update == "loss":
            extra["vq/codebook"] = (z_q.float() - z_e.detach().float()).square().flatten(1).sum(1)
        return ELBOTerms(log_px_z=log_px_z, kl={"codes": kl}, extra=extra, stats=stats)

    def log_importance_weights(self, x: Tensor, y: Tensor | None = None, k: int = 1) -> Tensor:
        """q(z|x) is a point mass, so every sample has weight p(x|z_q) p(z_q) / 1: the ELBO, k times."""
        return self.elbo_terms(x, y).elbo.unsqueeze(0).expand(k, -1)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        z_q, _, _ = self.quantize(self.encode(x))
        return self.likelihood.mean(self.decode(z_q))

    @torch.no_grad()
    def representation(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The flattened pre-quantisation encoder output z_e."""
        return self.encode(x).flatten(1)

    # -- sampling through a learned prior over codes ---------------------------------------------
    @property
    def can_sample(self) -> bool:
        return self.prior is not None

    @property
    def sample_unavailable_reason(self) -> str:
        return (
            "no prior trained: a VQ-VAE samples through a learned prior over its codes; "
            "run python -m vaezoo.prior run=<this run's job folder>"
        )

    def attach_prior(self, prior: PixelCNNPrior) -> None:
        """Use ``prior`` over this model's code grid for :meth:`sample`."""
        fits = prior.num_codes == self.num_codes and tuple(prior.grid) == tuple(self.grid)
        if not fits or prior.stages != self.code_stages:
            raise ConfigError(
                f"prior over {prior.num_codes} codes x {prior.stages} stage(s) on a {prior.grid} grid does "
                f"not fit this VQ-VAE ({self.num_codes} codes x {self.code_stages} stage(s) on a "
                f"{self.grid} grid)"
            )
        self.prior = prior.to(self.device)

    @torch.no_grad()
    def codes(self, x: Tensor) -> Tensor:
        """The code grid of each image: [B, h, w] in 0..num_codes-1 (rvq: [B, S, h, w], one per stage)."""
        return self.quantize(self.encode(x))[1]

    def code_indices(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, int]:
        return self.codes(x), self.num_codes

    @torch.no_grad()
    def decode_codes(self, codes: Tensor) -> Tensor:
        """Mean images for code grids [B, h, w] (rvq: [B, S, h, w])."""
        z_q = self.quantizer.lookup(codes)
        return self.likelihood.mean(self.decode(z_q))

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | None = None) -> Tensor:
        if self.prior is None:
            raise RuntimeError(self.sample_unavailable_reason)
        return self.decode_codes(self.prior.sample(n))

    @torch.no_grad()
    def decode_latent(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Quantise flat encoder outputs [B, code_dim·h·w] to their nearest codes, then decode."""
        z_e = z.reshape(z.shape[0], self.code_dim, *self.grid)
        z_q, _, _ = self.quantize(z_e)
        return self.likelihood.mean(self.decode(z_q))

    @torch.no_grad()
    def prior_latents(self, n: int, y: Tensor | None = None) -> Tensor:
        """Codes from the learned prior, as their codebook vectors (FSQ: encoder outputs that quantise
        to them; rvq: the sum of the stages' vectors), flat like :meth:`representation`;
        :meth:`decode_latent` maps them back to those codes (rvq: re-quantising the sum stage by stage,
        which usually but not always finds the same codes)."""
        if self.prior is None:
            raise RuntimeError(self.sample_unavailable_reason)
        codes = self.prior.sample(n)
        if isinstance(self.quantizer, FiniteScalarQuantizer):  # encoder outputs that quantise to them
            z_e = self.quantizer.unbound(self.quantizer.indices_to_codes(codes))
            return z_e.permute(0, 3, 1, 2).flatten(1)
        return self.quantizer.lookup(codes).flatten(1)

    @torch.no_grad()
    def kl_per_dim(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """log K per code position (rvq: S·log K, the uniform-prior KL), spread evenly over its code_dim."""
        per_position = self.code_stages * math.log(self.num_codes) / self.code_dim
        return torch.full(
            (x.shape[0], self.code_dim * self.grid[0] * self.grid[1]), per_position, device=x.device
        )
