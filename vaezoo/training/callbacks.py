"""Image grids: samples and reconstructions saved as PNG files and logged, once per epoch at most."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from vaezoo.training.module import VAEModule
from vaezoo.training.pixels import image_grid, save_image_grid

log = logging.getLogger(__name__)

#: The grids this callback saves, as (title, what it is drawn from), for reports to label them.
GRIDS: dict[str, tuple[str, str]] = {
    "samples": ("Samples from the model", "model.sample (one class per row for a conditional model)"),
    "reconstructions": (
        "Reconstructions: rows of validation images, each followed by its reconstruction",
        "the first validation images and model.reconstruct of them",
    ),
}


class ImageGrids(L.Callback):
    """After every ``every_n_epochs``-th validation epoch, render a sample and a reconstruction grid.

    Files go to ``<dir>/samples_epoch{E}.png`` and ``reconstructions_epoch{E}.png``; the newest are
    also copied to ``samples.png`` / ``reconstructions.png``. Each image is upscaled to cells of at least
    56 pixels (:mod:`vaezoo.training.pixels`), like every other picture. Reconstruction grids interleave rows
    of inputs and their reconstructions. Conditional models get one class per row of samples;
    models that cannot sample yet (``can_sample`` False) get reconstructions only, and the log says why once.
    """

    def __init__(self, dirpath: str | Path, n_images: int = 64, every_n_epochs: int = 1) -> None:
        self.dirpath = Path(dirpath)
        self.n_images = n_images
        self.every_n_epochs = max(1, every_n_epochs)
        self._said_no_samples = False

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: VAEModule) -> None:
        if trainer.sanity_checking:
            return
        last = trainer.current_epoch + 1 >= (trainer.max_epochs or 0)
        if (trainer.current_epoch + 1) % self.every_n_epochs and not last:
            return
        self.render(trainer, pl_module, tag=f"epoch{trainer.current_epoch:03d}")

    def sample_labels(self, model, y: torch.Tensor | None, nrow: int) -> torch.Tensor | None:
        """Labels for a conditional model's sample grid: one class (or one attribute vector) per row."""
        if not model.requires_labels or y is None:
            return None
        if y.dim() == 1:  # class indices: every class in turn (up to 20), one per row
            num_classes = model.data_info.num_classes or int(y.max()) + 1
            labels = torch.arange(min(num_classes, 20), device=y.device)
        else:  # attribute vectors (e.g. CelebA): the first validation images' attributes
            labels = y[: max(1, self.n_images // nrow)]
        return labels.repeat_interleave(nrow, dim=0)

    @torch.no_grad()
    def render(self, trainer: L.Trainer, pl_module: VAEModule, tag: str) -> dict[str, Path]:
        model = pl_module.model
        was_training = model.training
        model.eval()
        nrow = 8
        try:
            val = trainer.datamodule.splits["val"]
            batch = val[torch.arange(min(self.n_images // 2, len(val)))]
            x, y = batch["x"].to(pl_module.device), batch.get("y")
            y = None if y is None else y.to(pl_module.device)
            samples = None
            if model.can_sample:
                sample_y = self.sample_labels(model, y, nrow)
                n = self.n_images if sample_y is None else len(sample_y)
                samples = model.sample(n, sample_y).float().cpu()
            elif not self._said_no_samples:
                log.info("no sample grid for this model: %s", model.sample_unavailable_reason)
                self._said_no_samples = True
            recon = model.reconstruct(x, y).float().cpu()
        finally:
            model.train(was_training)
        pairs = torch.stack([x.float().cpu(), recon]).transpose(0, 1)  # interleave rows
        rows = [torch.cat([pairs[i : i + nrow, 0], pairs[i : i + nrow, 1]]) for i in range(0, len(x), nrow)]
        grids = {"reconstructions": image_grid(torch.cat(rows), nrow=nrow)}
        if samples is not None:
            grids["samples"] = image_grid(samples, nrow=nrow)
        paths = {}
        for name, grid in grids.items():
            path = self.dirpath / f"{name}_{tag}.png"
            save_image_grid(grid, path, self.dirpath / f"{name}.png")
            paths[name] = path
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for name, grid in grids.items():
                    logger.log_image(key=f"images/{name}", images=[grid], step=trainer.global_step)
        return paths
