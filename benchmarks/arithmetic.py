"""The arithmetic limit of the importance-weighted bound: decoder FLOPs × samples at the measured GEMM rate.

The bound decodes k latent samples of every test image; its decoder matrix products cannot run faster
than the machine multiplies matrices. :func:`gemm_rate` measures that rate on a product the size of
one chunk through the widest linear layer, :func:`decoder_flops_per_sample` counts one decoded sample's FLOPs
(torch's FLOP counter: matrix products and convolutions), and the ratio measured / limit says how far
the bound's code is from that floor (1.0: nothing but the decoder's GEMMs).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch


@torch.no_grad()
def decoder_flops_per_sample(model: Any, x: torch.Tensor, y: torch.Tensor | None) -> int:
    """FLOPs of decoding one flat latent (the model's ``decode_latent`` on its representation of x[:1])."""
    from torch.utils.flop_counter import FlopCounterMode

    y1 = None if y is None else y[:1]
    z = model.representation(x[:1], y1)
    counter = FlopCounterMode(display=False)
    with counter:
        model.decode_latent(z, y1)
    return int(counter.get_total_flops())


def gemm_rate(rows: int, inner: int, cols: int, device: torch.device, repeats: int = 5) -> float:
    """Median FLOP/s of a float32 [rows, inner] @ [inner, cols] product (after one warm-up)."""
    a = torch.randn(rows, inner, device=device)
    b = torch.randn(inner, cols, device=device)
    out = torch.empty(rows, cols, device=device)
    torch.mm(a, b, out=out)
    rates = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        rates.append(2 * rows * inner * cols / (time.perf_counter() - start))
    return statistics.median(rates)


def iw_arithmetic_limit(
    model: Any, batch: dict[str, torch.Tensor], k: int, n_images: int, chunk: int, device: torch.device
) -> dict[str, float]:
    """Decoder FLOPs, the GEMM rate and the resulting floor in seconds for a k-sample bound on n images."""
    x, y = batch["x"], batch.get("y")
    flops = decoder_flops_per_sample(model, x, y)
    # The GEMM the widest linear layer runs per chunk, (batch x chunk) rows: its rate is the floor's.
    widest = max(
        (m for m in model.modules() if isinstance(m, torch.nn.Linear)),
        key=lambda m: m.in_features * m.out_features,
        default=None,
    )
    inner, cols = (widest.in_features, widest.out_features) if widest is not None else (400, 784)
    rows = x.shape[0] * chunk
    rate = gemm_rate(rows, inner, cols, device)
    total = float(flops) * k * n_images
    return {
        "decoder_flops_per_sample": flops,
        "decoder_gflops_total": total / 1e9,
        "gemm_gflops_per_second": rate / 1e9,
        "gemm_shape": [rows, inner, cols],
        "limit_seconds": total / rate,
    }
