"""The two training loops a user would otherwise write, timed on the same model, data and batch size.

- ``tutorial``: torchvision's dataset with ``ToTensor`` (a PIL image per example) through a
  ``DataLoader(batch_size, shuffle=True)``, and a plain loop as the PyTorch examples write it:
  ``torch.optim.Adam`` with its defaults, ``torch.bernoulli`` for dynamic binarization and
  ``loss.item()`` read every step;
- ``bare``: the data as one uint8 tensor on the device, a fresh permutation per epoch, and a plain
  loop with nothing around it (no framework, no logging) that uses every kernel choice vaezoo makes
  (fused Adam when vaezoo's ``optimizer.fused`` is on, uniform < p binarization): the best a
  framework could do.

Both do vaezoo's math: the model's ``elbo_terms``, loss = −mean log p(x|z) + β·mean KL + mean
extra terms, backward, update skipping when ``optimizer.grad_skip_threshold`` is set, gradient-norm
clipping when the config clips, an Adam step with the config's hyperparameters, and dynamic
binarization when the dataset uses it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from vaezoo.data.datamodule import bernoulli_sample
from vaezoo.models.base import VAEModel
from vaezoo.training.module import skip_or_clip


@dataclass
class LoopSettings:
    """What the plain loops need to reproduce vaezoo's training step."""

    beta: float
    lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    clip_norm: float | None
    dynamic_binarize: bool
    levels: int
    fused_adam: bool
    grad_skip_threshold: float | None = None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PlainStep:
    """One training step as a hand-written loop does it (same math as vaezoo's objective with constant β)."""

    def __init__(self, model: VAEModel, settings: LoopSettings, fused: bool) -> None:
        self.model, self.s = model, settings
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(
            self.params,
            lr=settings.lr,
            betas=settings.betas,
            eps=settings.eps,
            weight_decay=settings.weight_decay,
            fused=fused or None,
        )

    def __call__(self, x: Tensor, y: Tensor | None) -> Tensor:
        terms = self.model.elbo_terms(x, y)
        loss = -terms.log_px_z.mean() + self.s.beta * terms.kl_total.mean()
        for extra in terms.extra.values():
            loss = loss + extra.mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        skip_or_clip(self.params, self.s.grad_skip_threshold, self.s.clip_norm)  # VAEModule's rule
        self.opt.step()
        return loss


def timed_steps(
    batches: Iterable[tuple[Tensor, Tensor | None]],
    step: Callable[[Tensor, Tensor | None], None],
    device: torch.device,
    warmup: int,
    max_steps: int | None,
) -> tuple[float, float, int]:
    """Run steps; returns (seconds from the start incl. loader set-up, seconds after warm-up, timed steps)."""
    sync(device)
    start = time.perf_counter()
    window_start = start
    n = 0
    for i, (x, y) in enumerate(batches):
        if i == warmup:
            sync(device)
            window_start = time.perf_counter()
        step(x, y)
        n += 1
        if max_steps is not None and n >= max_steps:
            break
    sync(device)
    end = time.perf_counter()
    return end - start, end - window_start, n - warmup


def bare_batches(
    x_all: Tensor, y_all: Tensor | None, batch_size: int, s: LoopSettings
) -> Iterator[tuple[Tensor, Tensor | None]]:
    """One shuffled epoch straight from the in-memory uint8 tensor."""
    order = torch.randperm(len(x_all), device=x_all.device)
    for start in range(0, len(x_all), batch_size):
        idx = order[start : start + batch_size]
        x = x_all[idx].float().div_(s.levels - 1)
        if s.dynamic_binarize:
            x = bernoulli_sample(x)
        yield x, None if y_all is None else y_all[idx]


def bare_epoch(
    model: VAEModel,
    s: LoopSettings,
    x_all: Tensor,
    y_all: Tensor | None,
    batch_size: int,
    warmup: int = 0,
    max_steps: int | None = None,
    step: PlainStep | None = None,
) -> tuple[float, float, int]:
    step = step or PlainStep(model, s, fused=s.fused_adam)
    model.train()
    return timed_steps(bare_batches(x_all, y_all, batch_size, s), step, x_all.device, warmup, max_steps)


def tutorial_batches(
    loader: DataLoader, device: torch.device, s: LoopSettings, with_labels: bool
) -> Iterator[tuple[Tensor, Tensor | None]]:
    for x, y in loader:
        x = x.to(device)
        if s.dynamic_binarize:
            x = torch.bernoulli(x)
        yield x, y.to(device) if with_labels else None


def tutorial_epoch(
    model: VAEModel,
    s: LoopSettings,
    loader: DataLoader,
    device: torch.device,
    with_labels: bool,
    warmup: int = 0,
    max_steps: int | None = None,
    step: PlainStep | None = None,
) -> tuple[float, float, int]:
    step = step or PlainStep(model, s, fused=False)
    model.train()
    total = [0.0]

    def run(x: Tensor, y: Tensor | None) -> None:
        total[0] += step(x, y).item()  # the tutorials' running loss: a host read every step

    return timed_steps(tutorial_batches(loader, device, s, with_labels), run, device, warmup, max_steps)


class PILImages(Dataset):
    """A torchvision-style dataset over uint8 HWC arrays: PIL image per example, then the transform.

    It does per example what ``torchvision.datasets.CIFAR10`` does, for the synthetic colour input.
    """

    def __init__(self, images_hwc: np.ndarray, targets: np.ndarray, transform: Callable) -> None:
        self.data, self.targets, self.transform = images_hwc, targets, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        img = Image.fromarray(self.data[index])
        return self.transform(img), int(self.targets[index])
