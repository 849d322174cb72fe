"""A masked autoregressive flow (Papamakarios et al. 2017) over the codes, as pythae's MAFSampler.

Each of ``layers`` MADE blocks (Germain et al. 2015) maps a code x to u_i = (x_i − μ_i(x_<i)) e^{−α_i(x_<i)}
in one pass, and the order of the dimensions is reversed between blocks, so the density of a code
(N(0, I) on the last u, times the Jacobians) costs one pass per block: training by maximum likelihood
is fast, sampling inverts the blocks one dimension at a time. Training stops when the held-out codes'
log-likelihood has not improved for ``patience`` epochs, and keeps the best epoch's weights.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from vaezoo.samplers import LatentSampler, fit_by_early_stopping, register_sampler

LOG_SCALE_BOUND = 5.0  # α is soft-clamped to ±5: one block scales a dimension by at most e^5


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (the autoregressive structure)."""

    def __init__(self, fan_in: int, fan_out: int, mask: Tensor) -> None:
        super().__init__(fan_in, fan_out)
        self.register_buffer("mask", mask.float())

    def forward(self, x: Tensor) -> Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """μ(x) and α(x) [B, D] where output i sees inputs 1..i−1 only (degrees as in Germain et al.)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        inputs = torch.arange(1, dim + 1)
        hiddens = torch.arange(hidden) % max(1, dim - 1) + 1
        self.net = nn.Sequential(
            MaskedLinear(dim, hidden, hiddens[:, None] >= inputs[None, :]),
            nn.ReLU(),
            MaskedLinear(hidden, hidden, hiddens[:, None] >= hiddens[None, :]),
            nn.ReLU(),
            MaskedLinear(hidden, 2 * dim, (inputs[:, None] > hiddens[None, :]).repeat(2, 1)),
        )
        last = self.net[-1]
        nn.init.zeros_(last.weight)  # each block starts as the identity
        nn.init.zeros_(last.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, alpha = self.net(x).chunk(2, dim=1)
        return mu, LOG_SCALE_BOUND * torch.tanh(alpha / LOG_SCALE_BOUND)


@register_sampler("maf", layers=5, hidden=128, lr=1e-3, batch_size=256, max_epochs=100, patience=5)
class MAFSampler(LatentSampler):
    """A masked autoregressive flow of MADE blocks, trained by maximum likelihood with early stopping."""

    def __init__(self, dim: int, layers: int = 5, hidden: int = 128) -> None:
        super().__init__(dim)
        self.layers, self.hidden = int(layers), int(hidden)
        self.blocks = nn.ModuleList(MADE(dim, hidden) for _ in range(layers))

    @property
    def hparams(self) -> dict[str, Any]:
        return {"dim": self.dim, "layers": self.layers, "hidden": self.hidden}

    def log_prob_standardised(self, u: Tensor) -> Tensor:
        x = u.float()
        log_det = torch.zeros(len(x), device=x.device)
        for block in self.blocks:
            mu, alpha = block(x)
            x = ((x - mu) * torch.exp(-alpha)).flip(1)  # the next block reads the reversed order
            log_det = log_det - alpha.sum(1)
        base = -0.5 * (x.square().sum(1) + self.dim * math.log(2 * math.pi))
        return (base + log_det).double()

    def sample_standardised(self, n: int) -> Tensor:
        x = torch.randn(n, self.dim, device=self.shift.device)
        for block in reversed(self.blocks):
            x = x.flip(1)
            out = torch.zeros_like(x)
            for i in range(self.dim):  # x_i needs x_<i: one pass per dimension
                mu, alpha = block(out)
                out[:, i] = x[:, i] * torch.exp(alpha[:, i]) + mu[:, i]
            x = out
        return x.double()

    @classmethod
    def fit(
        cls,
        train: Tensor,
        val: Tensor,
        seed: int,
        layers: int = 5,
        hidden: int = 128,
        lr: float = 1e-3,
        batch_size: int = 256,
        max_epochs: int = 100,
        patience: int = 5,
    ) -> tuple[MAFSampler, dict[str, Any]]:
        torch.manual_seed(seed)
        flow = cls(train.shape[1], layers, hidden)
        flow.standardise_with(train)
        u_train, u_val = flow.standardised(train).float(), flow.standardised(val).float()
        training = fit_by_early_stopping(
            flow,
            lambda u: -flow.log_prob_standardised(u),
            u_train,
            u_val,
            seed,
            lr,
            batch_size,
            max_epochs,
            patience,
        )
        held_out = -training.pop("held_out_loss") - float(flow.scale.log().sum())
        return flow, {**training, "held_out_log_likelihood": held_out}
