"""The sample-quality section of a report: each job's sample metrics through its prior and through every
fitted latent sampler, side by side (``python -m vaezoo.sampler``, then ``eval.sampler=[gmm,...]``).

A sample metric is a registered metric that needs a sampler (``fid``, ``conditional_accuracy``); a job
records it as ``<metric>`` (drawn from the model's own prior) and ``<metric>@<sampler>`` (drawn from the
fitted sampler). For each of its ranked keys one table: a row per job, a column per way of sampling, the
best of a row marked by the key's declared direction, and the gain of the best sampler over the prior.
The tables read only the :class:`~vaezoo.reports.leaderboard.Board`, so the HTML report and
``python -m vaezoo.table`` show the same numbers.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from vaezoo.evaluation.reported import Reported
from vaezoo.reports.leaderboard import Board, format_value, is_finite_number

#: The column of the figures drawn from the model's own prior (N(0, I), p(z|y) or a learned prior).
PRIOR = "prior"


@dataclass(frozen=True)
class SampleTable:
    """One ranked key of one sample metric: per job, its value through the prior and each sampler."""

    metric: str
    key: str
    reported: Reported
    samplers: list[str]  # PRIOR first, then the fitted samplers in name order
    jobs: list[str]  # the rows' labels: job name and distinguishing overrides
    values: list[dict[str, float | None]]  # per job: {sampler: value}

    @property
    def title(self) -> str:
        return f"{self.metric} {self.key} {self.reported.arrow} ({self.reported.unit})"

    def best(self, row: dict[str, float | None]) -> str | None:
        """The way of sampling with the best value of a row, by the declared direction."""
        present = {s: v for s, v in row.items() if v is not None}
        return self.reported.best_of(present, key=present.__getitem__) if present else None

    def gain(self, row: dict[str, float | None]) -> float | None:
        """How much the best fitted sampler improves on the prior (positive: better), or None."""
        prior = row.get(PRIOR)
        fitted = [v for s, v in row.items() if s != PRIOR and v is not None]
        if prior is None or not fitted:
            return None
        best = self.reported.best_of(fitted)
        return best - prior if self.reported.better == "higher" else prior - best


def sample_tables(board: Board) -> list[SampleTable]:
    """The tables of every sample metric that some job ran through a fitted sampler (none otherwise)."""
    from vaezoo.evaluation.registry import load_metrics

    tables = []
    for metric in load_metrics().values():
        if "sampler" not in metric.needs:
            continue
        for reported in metric.reports:
            if reported.better is None:
                continue
            suffix = f"/{reported.key}"
            samplers = sorted(
                {
                    column.name[len(metric.name) + 1 : -len(suffix)]
                    for column in board.columns
                    if column.name.startswith(f"{metric.name}@") and column.name.endswith(suffix)
                }
            )
            if not samplers:
                continue
            ways = [PRIOR, *samplers]
            labels, values = [], []
            for row in board.rows:
                cells = {way: row.get(column_name(metric.name, way, suffix)) for way in ways}
                cells = {way: v if is_finite_number(v) else None for way, v in cells.items()}
                if all(v is None for v in cells.values()):
                    continue
                labels.append(f"{row['job']} ({row['overrides']})")
                values.append(cells)
            tables.append(SampleTable(metric.name, reported.key, reported, ways, labels, values))
    return tables


def column_name(metric: str, way: str, suffix: str) -> str:
    """The leaderboard column of ``metric`` drawn ``way`` (PRIOR: the plain metric, else ``metric@way``)."""
    return f"{metric}{suffix}" if way == PRIOR else f"{metric}@{way}{suffix}"


def _gain_text(gain: float | None) -> str:
    return "" if gain is None else f"{gain:+.2f}"


def samples_section_html(board: Board) -> str:
    """The report's "Samples: prior and fitted samplers" section, or nothing when no sampler ran."""
    tables = sample_tables(board)
    if not tables:
        return ""
    parts = [
        "<h2 id='samples'>Samples: prior and fitted samplers</h2>",
        "<p class='muted'>Each sample metric drawn from the model's own prior and from every latent "
        "sampler fitted to its training codes (<code>python -m vaezoo.sampler</code>); the best way of "
        "sampling per job in green; gain: the best fitted sampler's improvement on the prior.</p>",
    ]
    for table in tables:
        head = "".join(f"<th>{html.escape(s)}</th>" for s in table.samplers)
        rows = []
        for label, row in zip(table.jobs, table.values, strict=True):
            best = table.best(row)
            cells = "".join(
                f"<td class='best'>{format_value(row[s], 2)}</td>"
                if s == best
                else f"<td>{format_value(row[s], 2)}</td>"
                for s in table.samplers
            )
            rows.append(
                f"<tr><td>{html.escape(label)}</td>{cells}<td>{_gain_text(table.gain(row))}</td></tr>"
            )
        parts += [
            f"<h3>{html.escape(table.title)}</h3>",
            f"<table class='samples'><thead><tr><th>job</th>{head}<th>gain</th></tr></thead>",
            f"<tbody>{''.join(rows)}</tbody></table>",
        ]
    return "\n".join(parts)


def samples_markdown(board: Board) -> str:
    """The same tables in Markdown (``python -m vaezoo.table``), best per row in bold; empty when no
    sampler ran."""
    blocks = []
    for table in sample_tables(board):
        lines = [
            f"**{table.title}**",
            "",
            "| job | " + " | ".join(table.samplers) + " | gain |",
            "|" + " --- |" * (len(table.samplers) + 2),
        ]
        for label, row in zip(table.jobs, table.values, strict=True):
            best = table.best(row)
            cells = [
                f"**{format_value(row[s], 2)}**" if s == best else format_value(row[s], 2)
                for s in table.samplers
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {_gain_text(table.gain(row))} |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
