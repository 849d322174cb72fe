"""Evaluation metrics that take functions and data, not a particular model class.

All of them stream over batches and keep memory bounded: the importance-weighted bound draws its
k samples in chunks and combines them with a running log-sum-exp.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

Batch = dict[str, Tensor]


@torch.no_grad()
def importance_weighted_bound(
    log_weights: Callable[[Tensor, Tensor | None, int], Tensor],
    batches: Iterable[Batch],
    k: int,
    chunk: int = 100,
) -> Tensor:
    """Burda et al. (2015) bound log (1/k) Σ_s p(x, z_s) / q(z_s|x) per example, in nats.

    ``log_weights(x, y, m)`` returns [m, B] log importance weights; samples are drawn ``chunk`` at a
    time (vectorised over samples and examples) and merged with a running log-sum-exp.
    """
    if k < 1 or chunk < 1:
        raise ValueError(f"k and chunk must be >= 1, got {k}, {chunk}")
    bounds = []
    for batch in batches:
        x, y = batch["x"], batch.get("y")
        running = torch.full((x.shape[0],), -math.inf, device=x.device, dtype=torch.float64)
        done = 0
        while done < k:
            m = min(chunk, k - done)
            lw = log_weights(x, y, m).double()
            running = torch.logaddexp(running, torch.logsumexp(lw, dim=0))
            done += m
        bounds.append((running - math.log(k)).float().cpu())
    return torch.cat(bounds)


@torch.no_grad()
def active_units(
    representation: Callable[[Tensor, Tensor | None], Tensor],
    batches: Iterable[Batch],
    threshold: float = 0.01,
) -> tuple[int, Tensor]:
    """Burda et al. (2015): unit u is active if Cov_x(E_q[z_u | x]) > threshold.

    ``representation(x, y)`` returns the posterior means [B, D]. Returns the count and the
    per-unit variances, computed in one pass (float64 sums).
    """
    n, total, total_sq = 0, None, None
    for batch in batches:
        mu = representation(batch["x"], batch.get("y")).flatten(1).double()
        total = mu.sum(0) if total is None else total + mu.sum(0)
        total_sq = mu.square().sum(0) if total_sq is None else total_sq + mu.square().sum(0)
        n += mu.shape[0]
    if n < 2 or total is None or total_sq is None:
        raise ValueError("active_units needs at least two examples")
    mean = total / n
    variance = ((total_sq - n * mean.square()) / (n - 1)).clamp(min=0).float().cpu()
    return int((variance > threshold).sum()), variance
