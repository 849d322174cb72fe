"""A small PixelCNN (van den Oord et al. 2016) over a grid of discrete codes: the VQ-VAE's learned prior.

Masked convolutions make the logits at position (i, j) depend only on codes above it and to its
left (raster order), so log p(codes) = Σ log p(c_ij | c_<ij) in one pass and sampling is one pass
per position.

With ``stages=S > 1`` (residual VQ: S codes per position, one per codebook) the S codes of a position
are laid side by side, the grid [S, H, W] becoming a token grid [H, W·S] read in raster order: position
(i, j) stage s comes after every stage of the positions before it and after its own stages < s. Stage s's
code k is token s·K + k, so the embedding tells the stages apart (a convolution alone could not tell
which stage a column holds); logits and samples at a stage-s column are restricted to its K codes, so
log p is normalised over valid grids. S = 1 is the plain prior, unchanged.
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
        self,
        num_codes: int,
        grid: tuple[int, int],
        channels: int = 64,
        layers: int = 6,
        kernel_size: int = 3,
        stages: int = 1,
    ) -> None:
        super().__init__()
        self.num_codes, self.grid, self.stages = int(num_codes), (int(grid[0]), int(grid[1])), int(stages)
        self.hparams = {
            "num_codes": self.num_codes,
            "grid": list(self.grid),
            "channels": channels,
            "layers": layers,
            "kernel_size": kernel_size,
            "stages": self.stages,
        }
        tokens = num_codes * self.stages
        self.embed = nn.Embedding(tokens, channels)
        self.first = MaskedConv2d("A", channels, channels, 7)
        self.blocks = nn.Sequential(*[ResidualMaskedBlock(channels, kernel_size) for _ in range(layers)])
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, tokens, 1)
        )

    def to_tokens(self, codes: Tensor) -> Tensor:
        """Code grids [B, H, W] (stages > 1: [B, S, H, W]) as the token grid [B, H, W·S]."""
        if self.stages == 1:
            return codes.long()
        offsets = torch.arange(self.stages, device=codes.device) * self.num_codes
        return (codes.long().permute(0, 2, 3, 1) + offsets).flatten(2)

    def forward(self, tokens: Tensor) -> Tensor:
        """Logits [B, K·S, H, W·S] of each token given the tokens before it."""
        h = self.embed(tokens.long()).permute(0, 3, 1, 2)
        return self.head(self.blocks(self.first(h)))

    def stage_logits(self, logits: Tensor) -> Tensor:
        """Logits [B, K·S, H, W·S] restricted to each column's stage: [B, K, H, W·S]."""
        if self.stages == 1:
            return logits
        b, _, h, width = logits.shape
        columns = torch.arange(width, device=logits.device)
        per_stage = logits.view(b, self.stages, self.num_codes, h, width)
        return per_stage[:, columns % self.stages, :, :, columns].permute(1, 2, 3, 0)

    def log_prob(self, codes: Tensor) -> Tensor:
        """log p(codes) per example, nats: [B]."""
        tokens = self.to_tokens(codes)
        logits = self.stage_logits(self(tokens).float())
        targets = tokens % self.num_codes
        return -F.cross_entropy(logits, targets, reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """n code grids [n, H, W] ([n, S, H, W] for stages > 1), one token at a time in raster order."""
        device = self.embed.weight.device
        height, width = self.grid[0], self.grid[1] * self.stages
        tokens = torch.zeros(n, height, width, dtype=torch.long, device=device)
        for i in range(height):
            for j in range(width):
                s = j % self.stages
                logits = self(tokens)[:, s * self.num_codes : (s + 1) * self.num_codes, i, j].float()
                code = torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1).squeeze(1)
                tokens[:, i, j] = code + s * self.num_codes
        codes = tokens % self.num_codes
        if self.stages == 1:
            return codes
        return codes.view(n, height, self.grid[1], self.stages).permute(0, 3, 1, 2)
