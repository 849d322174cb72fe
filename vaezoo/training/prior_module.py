"""Lightning glue for the second stage: a learned prior over a VQ-VAE's codes."""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import Tensor

from vaezoo.models.pixelcnn import PixelCNNPrior


class CodePriorModule(L.LightningModule):
    """Maximum likelihood for a prior over code grids; logs NLL per grid (nats) and bits per code."""

    def __init__(self, prior: PixelCNNPrior, lr: float = 1e-3) -> None:
        super().__init__()
        self.prior, self.lr = prior, lr
        self.positions = prior.grid[0] * prior.grid[1] * prior.stages  # codes per grid

    def _step(self, batch: tuple[Tensor], stage: str) -> Tensor:
        (codes,) = batch
        nll = -self.prior.log_prob(codes).mean()
        on_step = stage == "train"
        self.log_dict(
            {f"{stage}/nll": nll, f"{stage}/bits_per_code": nll / (self.positions * math.log(2))},
            on_step=on_step,
            on_epoch=not on_step,
            prog_bar=True,
            batch_size=codes.shape[0],
        )
        return nll

    def training_step(self, batch: tuple[Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.prior.parameters(), lr=self.lr)
