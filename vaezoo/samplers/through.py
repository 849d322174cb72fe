"""A model that samples through a fitted sampler, and the codes samplers are fitted on.

Both use only the models' latent-space interface: codes are :meth:`representation` (posterior means,
every layer of a hierarchy, flat), and samples are :meth:`decode_latent` of the sampler's draws, so
one sampler serves every family with a continuous latent and the sample metrics and pictures need no
change: they are given :class:`SampledThrough` in place of the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from vaezoo.errors import ConfigError
from vaezoo.samplers import LatentSampler


def check_continuous(model: Any, x: Tensor, y: Tensor | None) -> None:
    """A one-line ConfigError for a model whose latent is discrete (the VQ-VAE samples through its
    learned prior over codes, ``python -m vaezoo.prior``)."""
    if model.code_indices(x[:1], None if y is None else y[:1]) is not None:
        raise ConfigError(
            f"{type(model).__name__} has discrete codes; latent samplers are fitted to continuous latents "
            "(vanilla, beta_vae, cvae, hvae, stacked). A VQ-VAE samples through python -m vaezoo.prior"
        )


@torch.no_grad()
def encode_codes(model: Any, batches: Iterable[dict[str, Tensor]]) -> tuple[Tensor, Tensor | None]:
    """The flat posterior means [N, D] of every example, on the CPU in float32, and their labels [N]
    (None when the data has none)."""
    codes, labels = [], []
    for batch in batches:
        x = batch["x"].to(model.device).float()
        y = batch.get("y")
        codes.append(model.representation(x, None if y is None else y.to(model.device)).float().cpu())
        if y is not None:
            labels.append(y.cpu())
    if not codes:
        raise ConfigError("the split has no examples to fit a sampler on")
    return torch.cat(codes), (torch.cat(labels) if len(labels) == len(codes) else None)


class SampledThrough:
    """The model, with :meth:`sample` and :meth:`prior_latents` drawing codes from ``sampler``.

    Everything else (``decode_latent``, ``requires_labels``, ``device``, ``eval`` ...) is the model's own.
    A conditional model decodes the sampler's codes with the labels it is asked for, and a
    :class:`~vaezoo.samplers.PerLabelSampler` draws them from those labels' densities.
    """

    def __init__(self, model: Any, sampler: LatentSampler) -> None:
        self.model = model
        self.sampler = sampler.to(model.device)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    @property
    def can_sample(self) -> bool:
        return True

    @torch.no_grad()
    def prior_latents(self, n: int, y: Tensor | None = None) -> Tensor:
        return self.sampler.sample(n, y).to(self.model.device)

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | int | None = None) -> Tensor:
        if isinstance(y, int):
            y = torch.full((n,), y, dtype=torch.long, device=self.model.device)
        if y is None and self.model.requires_labels:
            raise ValueError("a conditional model samples for labels: give y")
        y = None if y is None else y.to(self.model.device)
        return self.model.decode_latent(self.prior_latents(n, y), y)
