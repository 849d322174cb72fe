"""Drawing helpers shared by the pictures: labelled, upscaled image grids and plain matplotlib figures.

Everything renders through matplotlib's object API (``Figure`` + Agg), never ``pyplot``'s global state,
so pictures can be drawn from any thread or process without a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from vaezoo.training.pixels import MIN_IMAGE_PX as MIN_IMAGE_PX  # re-exported: the pictures' cell size
from vaezoo.training.pixels import PAD_PX, upscale, upscale_factor

DPI = 100
FONT = 9


def tile(images: Tensor, pad: int = PAD_PX) -> np.ndarray:
    """Images [R, C, ch, H, W] in [0, 1] -> one upscaled canvas [H', W'] (grey) or [H', W', 3]."""
    rows, cols, channels, h, w = images.shape
    s = upscale_factor(h)
    big = upscale(images.detach().float().cpu().clamp(0, 1))
    ch, cw = h * s, w * s
    canvas = torch.ones(channels, rows * (ch + pad) - pad, cols * (cw + pad) - pad)
    for r in range(rows):
        for c in range(cols):
            canvas[:, r * (ch + pad) : r * (ch + pad) + ch, c * (cw + pad) : c * (cw + pad) + cw] = big[r, c]
    array = canvas.numpy()
    return array[0] if channels == 1 else array.transpose(1, 2, 0)


def labelled_grid(
    images: Tensor,
    path: Path,
    title: str = "",
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    col_title: str = "",
) -> Path:
    """Save images [R, C, ch, H, W] as one PNG, one screen pixel per canvas pixel, with labelled rows
    and columns (labels are centred on their row or column)."""
    canvas = tile(images)
    rows, cols = images.shape[:2]
    height, width = canvas.shape[:2]
    char = 0.62 * FONT * DPI / 72  # average glyph width in pixels
    left = 8 + (char * max((len(s) for s in row_labels), default=0) if row_labels else 0)
    top = 8 + (22 if title else 0) + (16 if col_labels else 0) + (16 if col_title else 0)
    right, bottom = 8, 8
    fig_w, fig_h = width + left + right, height + top + bottom
    fig = Figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI)
    ax = fig.add_axes((left / fig_w, bottom / fig_h, width / fig_w, height / fig_h))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    cell_h, cell_w = (height + PAD_PX) / rows, (width + PAD_PX) / cols
    ax.set_yticks([cell_h * (r + 0.5) - 0.5 for r in range(rows)], list(row_labels or [""] * rows))
    ax.set_xticks([cell_w * (c + 0.5) - 0.5 for c in range(cols)], list(col_labels or [""] * cols))
    ax.xaxis.tick_top()
    ax.tick_params(length=0, labelsize=FONT, pad=2)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if col_title:
        ax.set_xlabel(col_title, fontsize=FONT)
        ax.xaxis.set_label_position("top")
    if title:
        fig.suptitle(title, fontsize=FONT + 1, y=1 - 4 / fig_h, va="top")
    return save(fig, path)


def figure(width_in: float = 6.4, height_in: float = 4.0) -> Figure:
    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


def save(fig: Figure, path: Path) -> Path:
    """Draw into a temporary file, then rename it into place: an interrupted or failed save (a full
    disk) never leaves a half-written picture, and the previous one stays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    try:
        fig.savefig(partial, dpi=DPI, facecolor="white", format=path.suffix.lstrip(".") or "png")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def number(value: float) -> str:
    """A short axis label: 1.64, -0.5, 0."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
