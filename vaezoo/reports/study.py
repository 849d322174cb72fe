"""The study section of a sweep: Locatello et al.'s (2019) figures over a sweep of methods × values × seeds.

A job belongs to a study when its config has ``study.method`` (conf/method/, set by
``experiment=disentanglement_study``): the method, its hyperparameter's name (``study.hyperparameter``)
and the value it trained (``study.values[study.index]``) are read from the job's own resolved config,
the seed from ``seed``. :func:`study_of` gathers the finished study jobs of a :class:`Board` into a
:class:`Study`: per metric the values over seeds of every (method, value) cell (the paper's Figure 7),
and the Spearman rank correlation between the metrics over all jobs (its Figure 2). The HTML report
(:mod:`vaezoo.reports.html`) draws both with their tables, and the sweep's W&B group receives them
(:func:`wandb_tables`, :func:`figures`).
"""

from __future__ import annotations

import html
import math
import statistics
from dataclasses import dataclass
from typing import Any

from vaezoo.reports.leaderboard import BASE_COLUMNS, Board

#: Keys of a metric left out of the study's metrics: training-set copies of a held-out score and
#: per-factor or per-class parts (the study compares one number per metric).
LEFT_OUT_KEYS = ("train_accuracy", "informativeness_train", "gap_", "per_class", "per_dim")
#: One colour per position in a method's list of values (the first value of every method alike).
VALUE_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d")


@dataclass(frozen=True)
class StudyJob:
    """One finished study job: what it trained and the metric values it measured."""

    job: str
    method: str
    hyperparameter: str
    value: float
    seed: int
    metrics: dict[str, float]


@dataclass
class Study:
    """The finished jobs of a study sweep, the metrics they share, and the summaries drawn from them."""

    jobs: list[StudyJob]
    metrics: list[str]

    @property
    def methods(self) -> list[str]:
        """The methods in the order the sweep ran them."""
        return list(dict.fromkeys(j.method for j in self.jobs))

    def hyperparameter(self, method: str) -> str:
        return next(j.hyperparameter for j in self.jobs if j.method == method)

    def values(self, method: str) -> list[float]:
        return sorted({j.value for j in self.jobs if j.method == method})

    def cell(self, method: str, value: float, metric: str) -> list[float]:
        """The metric's values over the seeds of one method at one hyperparameter value."""
        return [
            j.metrics[metric]
            for j in sorted(self.jobs, key=lambda j: j.seed)
            if j.method == method and j.value == value and metric in j.metrics
        ]

    def summary_rows(self) -> list[dict[str, Any]]:
        """Per (method, value): the seeds and, per metric, the median and the quartiles over the seeds."""
        rows = []
        for method in self.methods:
            for value in self.values(method):
                seeds = sorted({j.seed for j in self.jobs if j.method == method and j.value == value})
                row: dict[str, Any] = {
                    "method": method,
                    "hyperparameter": self.hyperparameter(method),
                    "value": value,
                    "seeds": len(seeds),
                }
                for metric in self.metrics:
                    cell = self.cell(method, value, metric)
                    row[metric] = quartiles(cell) if cell else None
                rows.append(row)
        return rows

    def rank_correlation(self) -> list[list[float | None]]:
        """Spearman's rank correlation between every two metrics, over the jobs that have both
        (None where fewer than three jobs do or a metric is constant over them)."""
        matrix: list[list[float | None]] = []
        for a in self.metrics:
            row = []
            for b in self.metrics:
                pairs = [(j.metrics[a], j.metrics[b]) for j in self.jobs if a in j.metrics and b in j.metrics]
                row.append(spearman([p[0] for p in pairs], [p[1] for p in pairs]))
            matrix.append(row)
        return matrix


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile), by linear interpolation between order statistics."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0], ordered[0], ordered[0]
    q1, median, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return q1, median, q3


def ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of the ranks they span (as Spearman's coefficient needs)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            result[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return result


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rank correlation: Pearson's correlation of the ranks (ties averaged); None for fewer
    than three pairs or a constant variable, where it is undefined."""
    if len(x) != len(y):
        raise ValueError("spearman needs two lists of the same length")
    if len(x) < 3:
        return None
    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def study_metrics(board: Board) -> list[str]:
    """The board's ranked metric columns (a direction declared), without the keys in LEFT_OUT_KEYS."""
    base = {c.name for c, _ in BASE_COLUMNS}
    names = []
    for column in board.columns:
        if column.name in base or column.name in ("job", "overrides", "status") or column.better is None:
            continue
        key = column.name.partition("/")[2]
        if key.startswith(LEFT_OUT_KEYS):
            continue
        names.append(column.name)
    return names


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def study_of(board: Board) -> Study | None:
    """The study in a sweep's board, or None when no finished job's config names a study method."""
    metrics = study_metrics(board)
    jobs = []
    for job, row in zip(board.jobs, board.rows, strict=True):
        config = job.config
        if row["status"] != "finished" or config is None:
            continue
        study = config.get("study")
        if study is None or study.get("method") is None:
            continue
        index, values = study.get("index"), study.get("values")
        if not isinstance(index, int) or values is None or not 0 <= index < len(values):
            continue
        measured = {m: float(row[m]) for m in metrics if _finite(row.get(m))}
        jobs.append(
            StudyJob(
                job=job.name,
                method=str(study.method),
                hyperparameter=str(study.get("hyperparameter", "value")),
                value=float(values[index]),
                seed=int(config.get("seed", 0)),
                metrics=measured,
            )
        )
    if not jobs:
        return None
    used = [m for m in metrics if any(m in j.metrics for j in jobs)]
    return Study(jobs, used)


def figures(study: Study) -> list[Any]:
    """Plotly figures: per metric, box plots over seeds per method and value (one panel per method,
    as Locatello et al.'s Figure 7), then the rank-correlation heatmap (their Figure 2)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    out = []
    methods = study.methods
    for metric in study.metrics:
        titles = [f"{html.escape(m)}<br>{html.escape(study.hyperparameter(m))}" for m in methods]
        fig = make_subplots(rows=1, cols=len(methods), subplot_titles=titles, shared_yaxes=True)
        for col, method in enumerate(methods, start=1):
            for position, value in enumerate(study.values(method)):
                cell = study.cell(method, value, metric)
                if not cell:
                    continue
                fig.add_trace(
                    go.Box(
                        y=cell,
                        name=f"{value:g}",
                        boxpoints="all",
                        jitter=0.4,
                        pointpos=0,
                        marker_size=4,
                        line_width=1,
                        marker_color=VALUE_COLOURS[position % len(VALUE_COLOURS)],
                        showlegend=False,
                        hovertemplate=f"{html.escape(method)} {value:g}<br>%{{y:.3f}}<extra></extra>",
                    ),
                    row=1,
                    col=col,
                )
            fig.update_xaxes(type="category", row=1, col=col)
        fig.update_yaxes(title_text=html.escape(metric), row=1, col=1)
        fig.update_layout(
            title=f"{html.escape(metric)} over seeds, per method and hyperparameter value",
            width=max(620, 215 * len(methods)),
            height=360,
            title_y=0.98,
            title_yanchor="top",
        )
        out.append(fig)
    if len(study.metrics) >= 2:
        matrix = study.rank_correlation()
        labels = [html.escape(m) for m in study.metrics]
        heat = go.Figure(
            go.Heatmap(
                z=[[None if v is None else round(v * 100) for v in row] for row in matrix],
                x=labels,
                y=labels,
                zmin=-100,
                zmax=100,
                colorscale="RdBu",
                reversescale=True,
                text=[["" if v is None else f"{round(v * 100)}" for v in row] for row in matrix],
                texttemplate="%{text}",
                hovertemplate="%{y} · %{x}: %{z}<extra></extra>",
                colorbar_title="ρ×100",
            )
        )
        heat.update_layout(
            title=f"Spearman rank correlation between metrics ({len(study.jobs)} jobs), ×100",
            width=140 + 70 * len(labels),
            height=140 + 60 * len(labels),
            yaxis_autorange="reversed",
        )
        out.append(heat)
    return out


def summary_table_html(study: Study) -> str:
    """The table behind the box plots: per method and value, the seeds and each metric's median [q1, q3]."""
    head = "".join(
        f"<th>{html.escape(h)}</th>" for h in ("method", "hyperparameter", "value", "seeds", *study.metrics)
    )
    rows = []
    for row in study.summary_rows():
        cells = [
            f"<td>{html.escape(row['method'])}</td>",
            f"<td>{html.escape(row['hyperparameter'])}</td>",
            f"<td class='num'>{row['value']:g}</td>",
            f"<td class='num'>{row['seeds']}</td>",
        ]
        for metric in study.metrics:
            q = row[metric]
            text = "" if q is None else f"{q[1]:.3f} [{q[0]:.3f}, {q[2]:.3f}]"
            cells.append(f"<td class='num'>{text}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table class='board study'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def correlation_table_html(study: Study) -> str:
    """The numbers behind the heatmap (Spearman's ρ between every two metrics)."""
    head = "<th></th>" + "".join(f"<th>{html.escape(m)}</th>" for m in study.metrics)
    rows = []
    for metric, row in zip(study.metrics, study.rank_correlation(), strict=True):
        cells = "".join(f"<td class='num'>{'' if v is None else f'{v:.2f}'}</td>" for v in row)
        rows.append(f"<tr><th>{html.escape(metric)}</th>{cells}</tr>")
    return f"<table class='board study'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def wandb_tables(study: Study) -> dict[str, Any]:
    """The study for the sweep's W&B group: one row per job (long format, numbers kept as numbers),
    the per-cell summary, and the rank-correlation matrix."""
    import wandb

    per_job = wandb.Table(
        columns=["job", "method", "hyperparameter", "value", "seed", *study.metrics],
        data=[
            [j.job, j.method, j.hyperparameter, j.value, j.seed, *(j.metrics.get(m) for m in study.metrics)]
            for j in study.jobs
        ],
    )
    summary_columns = ["method", "hyperparameter", "value", "seeds"]
    summary_data = []
    for row in study.summary_rows():
        medians = [None if row[m] is None else row[m][1] for m in study.metrics]
        summary_data.append([*(row[c] for c in summary_columns), *medians])
    medians_columns = [f"{m} median" for m in study.metrics]
    summary = wandb.Table(columns=[*summary_columns, *medians_columns], data=summary_data)
    correlation = wandb.Table(
        columns=["metric", *study.metrics],
        data=[[m, *row] for m, row in zip(study.metrics, study.rank_correlation(), strict=True)],
    )
    return {"study/jobs": per_job, "study/summary": summary, "study/rank_correlation": correlation}
