"""A small PixelCNN (van den Oord et al. 2016) over a grid of discrete codes: the VQ-VAE's learned prior.

Masked convolutions make the logits at position (i, j) depend only on codes above it and to its
left (raster order), so log p(codes) = Σ log p(c_ij | c_<ij) in one pass and sampling is one pass
per position.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MaskedConv2d(nn.Conv2d):
    """A 'same' convolution that sees only earlier positions in raster order.

    Mask ``A`` (first layer) also hides the centre position; mask ``B`` (later layers) lets it through.
    """

    def __init__(self, mask_type: str, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be A or B, got {mask_type!r}")
        mask = torch.ones_like(self.weight)
        c = kernel_size // 2
        mask[:, :, c, c + (mask_type == "B") :] = 0
        mask[:, :, c + 1 :, :] = 0
        self.register_buffer("mask", mask)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class ResidualMaskedBlock(nn.Module):
    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d("B", channels, channels, kernel_size),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class PixelCNNPrior(nn.Module):
    """Autoregressive categorical prior p(c) over a [H, W] grid of codes in 0..num_codes-1."""

    def __init__(
        self, num_codes: int, grid: tuple[int, int], channels: int = 64, layers: int = 6, kernel_size: int = 3
    ) -> None:
        super().__init__()
        self.num_codes, self.grid = int(num_codes), (int(grid[0]), int(grid[1]))
        self.hparams = {
            "num_codes": self.num_codes,
            "grid": list(self.grid),
            "channels": channels,
            "layers": layers,
            "kernel_size": kernel_size,
        }
        self.embed = nn.Embedding(num_codes, channels)
        self.first = MaskedConv2d("A", channels, channels, 7)
        self.blocks = nn.Sequential(*[ResidualMaskedBlock(channels, kernel_size) for _ in range(layers)])
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, num_codes, 1)
        )

    def forward(self, codes: Tensor) -> Tensor:
        """Logits [B, K, H, W] of each position given the codes before it."""
        h = self.embed(codes.long()).permute(0, 3, 1, 2)
        return self.head(self.blocks(self.first(h)))

    def log_prob(self, codes: Tensor) -> Tensor:
        """log p(codes) per example, nats: [B]."""
        logits = self(codes).float()
        return -F.cross_entropy(logits, codes.long(), reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """n code grids [n, H, W], one position at a time in raster order."""
        device = self.embed.weight.device
        codes = torch.zeros(n, *self.grid, dtype=torch.long, device=device)
        for i in range(self.grid[0]):
            for j in range(self.grid[1]):
                logits = self(codes)[:, :, i, j].float() / temperature
                codes[:, i, j] = torch.multinomial(torch.softmax(logits, dim=-1), 1).squeeze(1)
        return codes
