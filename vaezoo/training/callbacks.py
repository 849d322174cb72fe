"""Image grids: samples and reconstructions saved as PNG files and logged, once per epoch at most."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image

from vaezoo.training.module import VAEModule


class ImageGrids(L.Callback):
    """After every ``every_n_epochs``-th validation epoch, render a sample and a reconstruction grid.

    Files go to ``<dir>/samples_epoch{E}.png`` and ``reconstructions_epoch{E}.png``; the newest are
    also copied to ``samples.png`` / ``reconstructions.png``. Reconstruction grids interleave rows
    of inputs and their reconstructions.
    """

    def __init__(self, dirpath: str | Path, n_images: int = 64, every_n_epochs: int = 1) -> None:
        self.dirpath = Path(dirpath)
        self.n_images = n_images
        self.every_n_epochs = max(1, every_n_epochs)

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: VAEModule) -> None:
        if trainer.sanity_checking:
            return
        last = trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        if (trainer.current_epoch + 1) % self.every_n_epochs and not last:
            return
        self.render(trainer, pl_module, tag=f"epoch{trainer.current_epoch:03d}")

    @torch.no_grad()
    def render(self, trainer: L.Trainer, pl_module: VAEModule, tag: str) -> dict[str, Path]:
        model = pl_module.model
        was_training = model.training
        model.eval()
        try:
            val = trainer.datamodule.splits["val"]
            batch = val[torch.arange(min(self.n_images // 2, len(val)))]
            x, y = batch["x"].to(pl_module.device), batch.get("y")
            y = None if y is None else y.to(pl_module.device)
            n = self.n_images
            sample_y = None
            if model.requires_labels and y is not None:
                sample_y = y.repeat((n + len(y) - 1) // len(y), *([1] * (y.dim() - 1)))[:n]
            samples = model.sample(n, sample_y).float().cpu()
            recon = model.reconstruct(x, y).float().cpu()
        finally:
            model.train(was_training)
        nrow = 8
        pairs = torch.stack([x.float().cpu(), recon]).transpose(0, 1)  # interleave rows
        rows = [torch.cat([pairs[i : i + nrow, 0], pairs[i : i + nrow, 1]]) for i in range(0, len(x), nrow)]
        grids = {
            "samples": make_grid(samples, nrow=nrow, pad_value=1.0),
            "reconstructions": make_grid(torch.cat(rows), nrow=nrow, pad_value=1.0),
        }
        self.dirpath.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, grid in grids.items():
            path = self.dirpath / f"{name}_{tag}.png"
            save_image(grid, path)
            save_image(grid, self.dirpath / f"{name}.png")
            paths[name] = path
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="images/samples", images=[grids["samples"]], step=trainer.global_step)
                logger.log_image(
                    key="images/reconstructions", images=[grids["reconstructions"]], step=trainer.global_step
                )
        return paths
