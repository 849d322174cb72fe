"""Two finished jobs with known values: every renderer marks the better one best in every ranked column.

The columns are those issue 18 found marked wrong by a direction guessed from names (FactorVAE and
β-VAE accuracies, MIG gaps, IW bits/dim) and the other metrics of a disentanglement sweep. The good
job is better in every column with a direction; columns whose direction is "neither" (KL, sample
counts) carry no mark. Each value is distinct, so a marked cell names its column.
"""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from rich.console import Console

from tests.conftest import run_cli
from tests.test_leaderboard import fake_job
from vaezoo.reports.html import write_report
from vaezoo.reports.leaderboard import declared, leaderboard, print_board

#: column: (good job's value, bad job's value, which way is better as declared)
COLUMNS = {
    "test ELBO": (-90.25, -95.75, "higher"),
    "IW bound": (-88.25, -93.75, "higher"),
    "log p(x|z)": (-70.25, -80.75, "higher"),
    "KL": (20.25, 15.75, None),
    "active units": (9, 4, "higher"),
    "recon MSE": (0.0125, 0.0375, "lower"),
    "train s": (3.5, 7.5, "lower"),
    "factor_vae_score/eval_accuracy": (0.911, 0.611, "higher"),
    "factor_vae_score/train_accuracy": (0.922, 0.622, "higher"),
    "factor_vae_score/active_codes": (6, 10, None),
    "beta_vae_score/eval_accuracy": (0.933, 0.633, "higher"),
    "beta_vae_score/train_accuracy": (0.944, 0.644, "higher"),
    "mig/mig": (0.355, 0.055, "higher"),
    "mig/gap_shape": (0.366, 0.066, "higher"),
    "mig/gap_scale": (0.377, 0.077, "higher"),
    "sap": (0.488, 0.188, "higher"),
    "iw_bound/nats": (-87.125, -92.625, "higher"),
    "iw_bound/bits_per_dim": (0.161, 0.171, "lower"),
    "fid/distance": (12.345, 45.678, "lower"),
    "fid/samples": (1000, 2000, None),
}


def results(which: int) -> tuple[dict, dict, float]:
    """(test section, metrics section, train seconds) of the good (0) or bad (1) job."""
    value = {name: values[which] for name, values in COLUMNS.items()}
    test_keys = {
        "test ELBO": "elbo_nats",
        "IW bound": "iw_bound_nats",
        "log p(x|z)": "log_px_z_nats",
        "KL": "kl_nats",
        "active units": "active_units",
        "recon MSE": "recon_mse",
    }
    test = {key: value[column] for column, key in test_keys.items()} | {"latent_units": 10}
    metrics: dict[str, dict] = {}
    for column, number in value.items():
        if "/" in column:
            name, part = column.split("/")
            metrics.setdefault(name, {"values": {}, "seconds": 1.0})["values"][part] = number
    metrics["sap"] = {"value": value["sap"], "seconds": 1.0}
    return test, metrics, value["train s"]


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Job 0 is worse in every ranked column and listed first, job 1 is better."""
    folder = tmp_path / "sweep"
    for index, which, beta in ((0, 1, 8), (1, 0, 1)):
        test, metrics, seconds = results(which)
        job = fake_job(folder / f"{index}_beta={beta}", [f"beta={beta}"], test, metrics)
        written = json.loads((job / "results.json").read_text())
        (job / "results.json").write_text(json.dumps(written | {"train_seconds": seconds}))
    return folder


def test_every_column_of_the_sweep_is_declared_with_its_known_direction(sweep: Path):
    board = leaderboard(sweep)
    shown = {c.name for c in board.columns} - {"job", "overrides", "status"}
    assert shown == set(COLUMNS)  # the test covers every column the sweep shows
    assert {name: declared(name).better for name in COLUMNS} == {n: b for n, (_, _, b) in COLUMNS.items()}
    best = {c.name: board.best(c) for c in board.columns if c.name in COLUMNS}
    assert best == {name: (good if better else None) for name, (good, _, better) in COLUMNS.items()}


def test_the_terminal_leaderboard_marks_the_better_job(sweep: Path):
    board = leaderboard(sweep)
    console = Console(record=True, width=1000, force_terminal=True, file=io.StringIO())
    print_board(board, console=console)
    styled = console.export_text(styles=True, clear=False)
    bold_green = re.compile(r"\x1b\[1;32m\s*([^\x1b]*?)\s*\x1b\[0m")
    marked = set(bold_green.findall(styled))
    digits = {c.name: c.digits for c in board.columns}
    for name, (good, bad, better) in COLUMNS.items():
        good_text = f"{good:.{digits[name]}f}" if isinstance(good, float) else str(good)
        bad_text = f"{bad:.{digits[name]}f}" if isinstance(bad, float) else str(bad)
        assert (good_text in marked) == (better is not None), name
        assert bad_text not in marked, name
    header = console.export_text()
    assert "mig/gap_shape ↑" in header and "iw_bound/bits_per_dim ↓" in header and "KL ↑" not in header


def markdown_marks(text: str) -> dict[str, list[str]]:
    """{header: [cell per row]} of a Markdown table (escaped pipes kept inside cells)."""
    rows = [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in text.strip().splitlines()]
    header, body = rows[0], rows[2:]
    return {h: [row[i] for row in body] for i, h in enumerate(header)}


def test_python_m_vaezoo_table_marks_the_better_job(sweep: Path, tmp_path: Path):
    done = run_cli([str(sweep)], cwd=tmp_path, module="vaezoo.table")
    assert done.returncode == 0, done.stderr
    table = markdown_marks(done.stdout)
    for name, (_, _, better) in COLUMNS.items():
        arrow = {"higher": " ↑", "lower": " ↓", None: ""}[better]
        bad_cell, good_cell = table[name.replace("|", "\\|") + arrow]  # the bad job is row 0
        assert good_cell.startswith("**") == (better is not None), (name, good_cell)
        assert not bad_cell.startswith("**"), (name, bad_cell)


class BoardCells(HTMLParser):
    """Header cells (text, title) and body cells (text, classes) of the report's leaderboard."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[tuple[str, str]] = []
        self.rows: list[list[tuple[str, set[str]]]] = []
        self.cell: list | None = None
        self.in_board = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "table" and attributes.get("id") == "board":
            self.in_board = True
        elif self.in_board and tag == "tr":
            self.rows.append([])
        elif self.in_board and tag in ("th", "td"):
            self.cell = [tag, "", attributes.get("title") or attributes.get("class") or ""]

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell[1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.in_board = False
        elif self.cell is not None and tag == self.cell[0]:
            kind, text, extra = self.cell
            if kind == "th":
                self.headers.append((text, extra))
            else:
                self.rows[-1].append((text, set(extra.split())))
            self.cell = None


def test_the_html_report_marks_the_better_job_and_says_each_unit(sweep: Path):
    parser = BoardCells()
    parser.feed(write_report(sweep).read_text())
    rows = [row for row in parser.rows if row]
    assert len(rows) == 2
    names = [text for text, _ in parser.headers]
    for name, (_, _, better) in COLUMNS.items():
        arrow = {"higher": " ↑", "lower": " ↓", None: ""}[better]
        i = names.index(name + arrow)
        (bad_text, bad_classes), (good_text, good_classes) = rows[0][i], rows[1][i]
        assert ("best" in good_classes) == (better is not None), (name, good_text)
        assert "best" not in bad_classes, (name, bad_text)
        title = parser.headers[i][1]
        assert declared(name).unit in title and declared(name).about in title, (name, title)
    assert "(bits/dim; lower is better)" in parser.headers[names.index("iw_bound/bits_per_dim ↓")][1]
