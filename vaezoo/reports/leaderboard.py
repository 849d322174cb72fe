"""The sweep leaderboard: one row per job folder, read through :mod:`vaezoo.jobs.folder`, rendered three ways.

:func:`leaderboard` turns job folders into a :class:`Board` (columns carrying the declaration of
what they show, see :func:`declared`, rows of plain values); the terminal table (:func:`print_board`,
rich), the Markdown table (``python -m vaezoo.table``) and the HTML report
(:mod:`vaezoo.reports.html`) all render the same Board.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaezoo.evaluation.held_out import TEST_REPORTED
from vaezoo.evaluation.registry import declared as declared_metric
from vaezoo.evaluation.reported import (
    PAPER_REPORTED,
    PRIOR_REPORTED,
    RUN_REPORTED,
    SINGLE,
    Better,
    Reported,
    find,
)
from vaezoo.jobs.folder import Job, find_jobs


@dataclass(frozen=True)
class Column:
    """A column: ``reported`` is its declaration (direction, unit; None: never ranked); ``digits``
    formats its numbers."""

    name: str
    reported: Reported | None = None
    digits: int = 2

    @property
    def better(self) -> Better | None:
        """Which way is better (higher, lower or None: not ranked), as declared; never guessed."""
        return None if self.reported is None else self.reported.better

    @property
    def heading(self) -> str:
        """The name with ↑ (higher is better) or ↓ (lower is better) as declared."""
        arrow = "" if self.reported is None else self.reported.arrow
        return f"{self.name} {arrow}" if arrow else self.name


@dataclass
class Board:
    """Rows of {column name: value} (numbers, text or None) and the jobs they came from."""

    columns: list[Column]
    rows: list[dict[str, Any]]
    jobs: list[Job] = field(default_factory=list)

    def best(self, column: Column) -> float | None:
        """The best finite value of a ranked column over the finished jobs, or None."""
        values = [r[column.name] for r in self.rows if is_finite_number(r.get(column.name))]
        if column.reported is None or column.better is None or not values:
            return None
        return column.reported.best_of(values)

    def text(self, row: dict[str, Any], column: Column) -> str:
        return format_value(row.get(column.name), column.digits)


def is_finite_number(value: Any) -> bool:
    """A finite int or float (not a bool, not NaN or ±inf): what can be ranked."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def format_value(value: Any, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e6 else f"{value:.3g}"
    return str(value)


def _test(key: str) -> Callable[[Job, dict[str, Any]], Any]:
    return lambda job, results: (results.get("test") or {}).get(key)


def _paper(key: str) -> Callable[[Job, dict[str, Any]], Any]:
    return lambda job, results: (results.get("paper") or {}).get(key)


def _declaration(declarations: tuple[Reported, ...], key: str) -> Reported:
    found = find(declarations, key)
    if found is None:  # a programming error, raised when this module is imported
        raise KeyError(f"leaderboard column for {key!r}: the key is not declared")
    return found


#: Columns every finished job has (results.json's test section and others), each with the declaration of the
#: results.json key it shows (its direction and unit).
BASE_COLUMNS: list[tuple[Column, Callable[[Job, dict[str, Any]], Any]]] = [
    (Column("test ELBO", _declaration(TEST_REPORTED, "elbo_nats")), _test("elbo_nats")),
    (Column("IW bound", _declaration(TEST_REPORTED, "iw_bound_nats")), _test("iw_bound_nats")),
    (Column("log p(x|z)", _declaration(TEST_REPORTED, "log_px_z_nats")), _test("log_px_z_nats")),
    (Column("KL", _declaration(TEST_REPORTED, "kl_nats")), _test("kl_nats")),
    (Column("active units", _declaration(TEST_REPORTED, "active_units"), 0), _test("active_units")),
    (Column("recon MSE", _declaration(TEST_REPORTED, "recon_mse"), 4), _test("recon_mse")),
    (
        Column("ELBO learned prior", _declaration(PRIOR_REPORTED, "test_elbo_learned_prior_nats")),
        lambda job, r: (job.prior_results or {}).get("test_elbo_learned_prior_nats"),
    ),
    # A paper-protocol preset's published number beside the measured one (results.json "paper").
    (Column("paper metric", _declaration(PAPER_REPORTED, "metric")), _paper("metric")),
    (Column("paper", _declaration(PAPER_REPORTED, "value"), 3), _paper("value")),
    (Column("measured", _declaration(PAPER_REPORTED, "measured"), 3), _paper("measured")),
    (Column("measured − paper", _declaration(PAPER_REPORTED, "difference"), 2), _paper("difference")),
    (
        Column("schedule shortened", _declaration(RUN_REPORTED, "lr_schedule")),
        lambda job, r: (r.get("lr_schedule") or {}).get("shortened"),
    ),
    (Column("epochs", _declaration(RUN_REPORTED, "epochs"), 0), lambda job, r: r.get("epochs")),
    (
        Column("train s", _declaration(RUN_REPORTED, "train_seconds"), 1),
        lambda job, r: r.get("train_seconds"),
    ),
]
#: Shown even when no job has a value (the others appear only where some job has one).
ALWAYS = ("job", "overrides", "status", "test ELBO", "IW bound", "KL", "train s")


def metric_values(results: dict[str, Any]) -> dict[str, Any]:
    """The numeric entries of results["metrics"] ({name: {"value": x} | {"values": {...}} | {"skipped":
    reason}}) as flat {column: value}; a skipped metric shows as "skipped"."""
    out: dict[str, Any] = {}
    for name, entry in (results.get("metrics") or {}).items():
        if not isinstance(entry, dict):
            continue
        if "value" in entry and _is_number(entry["value"]):
            out[name] = entry["value"]
        elif isinstance(entry.get("values"), dict):  # scalars only: per-dimension lists stay in results.json
            out.update({f"{name}/{k}": v for k, v in entry["values"].items() if _is_number(v)})
        elif "skipped" in entry:
            out[name] = "skipped"
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def declared(column: str) -> Reported | None:
    """The declaration of a leaderboard column: a base column's, else the registered metric's
    (``name`` for a one-number metric, ``name/key`` for one of its keys); None for anything undeclared
    (text columns, a metric no longer registered), which is then never ranked."""
    for base, _ in BASE_COLUMNS:
        if base.name == column:
            return base.reported
    if column in ("job", "overrides", "status"):
        return None
    metric, _, key = column.partition("/")
    return declared_metric(metric, key or SINGLE)


#: Overrides that say where a job ran, not what it is.
PLACE_KEYS = ("paths.", "logger.mode", "hardware", "trainer.enable_progress_bar", "resume", "reproduce")


def distinguishing_overrides(jobs: list[Job]) -> list[list[str]]:
    """Per job, its overrides minus those every job shares and those that only say where it ran."""
    lists = [[o for o in job.overrides if not o.lstrip("+~").startswith(PLACE_KEYS)] for job in jobs]
    shared = set.intersection(*(set(o) for o in lists)) if len(lists) > 1 else set()
    return [[o for o in overrides if o not in shared] for overrides in lists]


def leaderboard(folder: str | Path | Iterable[Job]) -> Board:
    """The Board of every job under ``folder`` (a job, sweep or runs folder), or of the given jobs."""
    jobs = find_jobs(folder) if isinstance(folder, (str, Path)) else list(folder)
    rows: list[dict[str, Any]] = []
    metric_names: dict[str, None] = {}
    for job, overrides in zip(jobs, distinguishing_overrides(jobs), strict=True):
        results = job.results.to_dict() if job.results is not None else {}  # vaezoo.jobs.results
        failure = job.failure
        row: dict[str, Any] = {
            "job": job.name,
            "overrides": " ".join(overrides) or "(defaults)",
            "status": job.status,
        }
        if failure is not None:
            row["error"] = failure.get("error", "")
        for column, get in BASE_COLUMNS:
            row[column.name] = get(job, results) if results else None
        metrics = metric_values(results)
        metric_names.update(dict.fromkeys(metrics))
        row.update(metrics)
        rows.append(row)
    columns = [
        *(Column(name) for name in ("job", "overrides", "status")),
        *(c for c, _ in BASE_COLUMNS),
        *(Column(n, declared(n), 3) for n in metric_names),
    ]
    columns = [c for c in columns if c.name in ALWAYS or any(r.get(c.name) is not None for r in rows)]
    return Board(columns, rows, jobs)


def print_board(board: Board, report: Path | None = None, console: Any = None) -> None:
    """The leaderboard as a rich table in the terminal: best value per column in bold green, failed jobs
    in red with their error; then the path of the HTML report."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # a log file or a pipe: wide enough that no number is cut
            console = Console(width=220)
    table = Table(
        title=f"Leaderboard ({len(board.rows)} jobs; best per column in bold green; "
        "↑ higher, ↓ lower is better)"
    )
    for column in board.columns:
        text_column = column.name in ("job", "overrides", "status")
        table.add_column(column.heading, justify="left" if text_column else "right", no_wrap=not text_column)
    best = {c.name: board.best(c) for c in board.columns}
    for row in board.rows:
        cells = []
        for column in board.columns:
            text = board.text(row, column)
            if column.name == "status" and row["status"] == "failed":
                text = f"[bold red]FAILED[/] {row.get('error', '')[:60]}"
            elif best[column.name] is not None and row.get(column.name) == best[column.name]:
                text = f"[bold green]{text}[/]"
            cells.append(text)
        table.add_row(*cells, style="red" if row["status"] == "failed" else None)
    console.print(table)
    if report is not None:
        console.print(f"report: {report}", soft_wrap=True)


def markdown(board: Board) -> str:
    """The leaderboard as a Markdown table (best value per column in bold; ↑ / ↓ after a column's name
    say that higher / lower is better)."""
    best = {c.name: board.best(c) for c in board.columns}
    head = " | ".join(c.heading.replace("|", "\\|") for c in board.columns)
    lines = [f"| {head} |", "|" + " --- |" * len(board.columns)]
    for row in board.rows:
        cells = []
        for column in board.columns:
            text = board.text(row, column).replace("|", "\\|")
            if best[column.name] is not None and row.get(column.name) == best[column.name]:
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def wandb_table(board: Board) -> Any:
    """The leaderboard as one ``wandb.Table`` (numbers stay numbers, so W&B can sort and plot them)."""
    import wandb

    names = [c.name for c in board.columns]
    return wandb.Table(columns=names, data=[[row.get(n) for n in names] for row in board.rows])
