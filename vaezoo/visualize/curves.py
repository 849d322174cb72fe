"""Training curves from the job's metrics.csv: ELBO, KL (per group where there are several) and the
KL weight's schedule (β, capacity, ...), against the optimiser step."""

from __future__ import annotations

import math
from pathlib import Path

from vaezoo.visualize import Scene, picture
from vaezoo.visualize.figures import figure, save


def series(rows: list[dict[str, str]], column: str) -> tuple[list[float], list[float]]:
    """(steps, values) of one metrics.csv column, where it has finite values."""
    steps, values = [], []
    for row in rows:
        text = row.get(column, "")
        if text not in ("", None):
            value = float(text)
            if math.isfinite(value):
                steps.append(float(row.get("step") or 0))
                values.append(value)
    return steps, values


def panels(columns: list[str]) -> dict[str, list[str]]:
    """Columns per panel: ELBO, KL, and the schedule (the objective logs it as <stage>/kl/<name>)."""
    out: dict[str, list[str]] = {"ELBO (nats)": [], "KL (nats)": [], "KL schedule": []}
    for col in columns:
        stage, _, metric = col.partition("/")
        if stage not in ("train", "val"):
            continue
        if metric == "elbo":
            out["ELBO (nats)"].append(col)
        elif metric == "kl" or metric.startswith("kl_"):
            out["KL (nats)"].append(col)
        elif metric.startswith("kl/"):
            out["KL schedule"].append(col)
    return {name: cols for name, cols in out.items() if cols}


def skip(scene: Scene) -> str | None:
    return None if scene.metrics_rows else "no metrics.csv rows"


@picture(
    "curves",
    "every job with a metrics.csv",
    title="Training curves: ELBO, KL and the KL weight per step",
    uses="the job's metrics.csv",
    skip=skip,
)
def draw(scene: Scene, path: Path) -> Path:
    columns = sorted({c for row in scene.metrics_rows for c in row})
    groups = panels(columns)
    fig = figure(4.0 * max(1, len(groups)), 3.2)
    for i, (name, cols) in enumerate(groups.items()):
        ax = fig.add_subplot(1, len(groups), i + 1)
        for col in cols:
            steps, values = series(scene.metrics_rows, col)
            if values:
                ax.plot(steps, values, marker="o" if len(values) < 30 else None, ms=3, label=col)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.suptitle("Training curves (metrics.csv)", fontsize=10)
    return save(fig, path)
