"""The leaderboard (one reader of job folders, rendered as rich, Markdown, HTML and W&B tables)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rich.console import Console

from vaezoo.reports.html import write_report
from vaezoo.reports.leaderboard import leaderboard, markdown, metric_values, print_board


def fake_job(
    folder: Path, overrides: list[str], test: dict | None = None, metrics: dict | None = None
) -> Path:
    """A job folder as training leaves it (config, overrides, results.json or failed.json)."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("model:\n  name: beta_vae\nbeta: 1.0\n")
    (folder / ".hydra").mkdir()
    (folder / ".hydra" / "config.yaml").write_text("beta: 1.0\n")
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if test is None:
        (folder / "failed.json").write_text(json.dumps({"job": 2, "error": "TrainingFailure: loss is NaN"}))
    else:
        results = {"test": test, "train_seconds": 3.5, "metrics": metrics or {}}
        (folder / "results.json").write_text(json.dumps(results))
    return folder


def sweep(tmp_path: Path) -> Path:
    base = {"log_px_z_nats": -20.0, "kl_nats": 5.0, "active_units": 8, "latent_units": 10}
    fake_job(
        tmp_path / "0_beta=1",
        ["beta=1", "paths.runs=/x"],
        {**base, "elbo_nats": -25.0, "iw_bound_nats": -24.0},
        {"sap": {"value": 0.1}, "fid": {"values": {"distance": 40.0, "samples": 100}}},
    )
    fake_job(
        tmp_path / "1_beta=4",
        ["beta=4", "paths.runs=/x"],
        {**base, "elbo_nats": -27.0, "iw_bound_nats": None, "kl_nats": 1.0, "active_units": 2},
        {"sap": {"value": 0.3}, "fid": {"skipped": "no classifier"}},
    )
    fake_job(tmp_path / "2_beta=16", ["beta=16", "paths.runs=/x"])
    return tmp_path


def test_metric_entries_become_columns():
    entries = {"mig": {"value": 0.1}, "fid": {"values": {"a": 1.0, "b": 2.0}}, "sap": {"skipped": "why"}}
    assert metric_values({"metrics": entries}) == {"mig": 0.1, "fid/a": 1.0, "fid/b": 2.0, "sap": "skipped"}
    # Per-dimension lists (kl_per_dim) stay in results.json: a column holds one number per job.
    per_dim = {"kl_per_dim": {"values": {"per_dim": [0.5, 0.1], "total": 0.6}}}
    assert metric_values({"metrics": per_dim}) == {"kl_per_dim/total": 0.6}


def test_one_row_per_job_with_overrides_that_differ_and_best_per_column(tmp_path: Path):
    board = leaderboard(sweep(tmp_path))
    assert [r["overrides"] for r in board.rows] == ["beta=1", "beta=4", "beta=16"]
    assert [r["status"] for r in board.rows] == ["finished", "finished", "failed"]
    assert board.rows[2]["error"] == "TrainingFailure: loss is NaN" and board.rows[2]["test ELBO"] is None
    best = {c.name: board.best(c) for c in board.columns}
    assert best["test ELBO"] == -25.0 and best["IW bound"] == -24.0 and best["active units"] == 8
    assert best["sap"] == 0.3 and best["fid/distance"] == 40.0  # higher SAP, lower FID, as declared
    assert best["KL"] is None and best["fid/samples"] is None  # declared: neither direction is better
    assert board.rows[1]["fid"] == "skipped"


def test_terminal_table_marks_best_and_failed_and_prints_the_report_path(tmp_path: Path):
    board = leaderboard(sweep(tmp_path))
    console = Console(record=True, width=250, force_terminal=True)
    print_board(board, report=tmp_path / "report.html", console=console)
    text = console.export_text(clear=False)
    assert "FAILED TrainingFailure: loss is NaN" in text
    assert f"report: {tmp_path / 'report.html'}" in text
    styled = console.export_html(inline_styles=True)
    assert re.search(r"font-weight: bold[^>]*>-25\.00<", styled)  # best test ELBO in bold
    assert not re.search(r"font-weight: bold[^>]*>-27\.00<", styled)


def test_markdown_renderer_of_the_same_board(tmp_path: Path):
    text = markdown(leaderboard(sweep(tmp_path)))
    lines = text.splitlines()
    assert len(lines) == 2 + 3 and "| **-25.00** |" in lines[2] and "| -27.00 |" in lines[3]


def test_report_is_one_file_with_the_leaderboard_and_no_external_reference(tmp_path: Path):
    path = write_report(sweep(tmp_path))
    page = path.read_text()
    assert path == tmp_path.resolve() / "report.html"
    assert page.count("<tr class='finished'>") == 2 and page.count("<tr class='failed'>") == 1
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # No src= or href= in the page's markup that leaves the file (local job folders and anchors only);
    # plotly.js, inlined, mentions its home page in strings, which the CSP keeps from being fetched.
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)
    for attribute in re.findall(r"(?:src|href)=['\"]([^'\"]+)", markup):
        assert not re.match(r"(https?:)?//", attribute), attribute
    assert "href='0_beta=1/'" in page and "href='#job-0_beta-1'" in page


def test_wandb_group_says_what_the_sweep_is():
    from vaezoo.stages.sweep import sweep_group, swept_keys

    keys = swept_keys(
        ["beta=1,4", "dataset=digits", "paths.runs=/a,/b", "model=vanilla,hvae", "lr=range(1,3)"]
    )
    assert keys == ["beta", "model", "lr"]
    assert swept_keys(["dataset=digits"], {"beta": "1,4"}) == ["beta"]  # an experiment's sweeper params
    assert sweep_group(None, keys, "2026-11-22_04-38-07-cd2ca9") == "beta,model,lr-2026-11-22_04-38-07-cd2ca9"
    assert sweep_group("quickstart", keys, "t") == "quickstart-t"
    assert len(sweep_group(None, ["k" * 200], "t")) == 128


def test_report_command_writes_the_report_or_says_in_one_line_why_not(tmp_path: Path):
    from tests.conftest import run_cli

    done = run_cli([str(sweep(tmp_path / "sweep"))], cwd=tmp_path, module="vaezoo.stages.report")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "sweep" / "report.html").is_file() and "Leaderboard (3 jobs" in done.stdout
    (tmp_path / "empty").mkdir()
    empty = run_cli([str(tmp_path / "empty")], cwd=tmp_path, module="vaezoo.stages.report")
    assert empty.returncode == 2
    assert (
        empty.stderr.strip()
        == f"vaezoo: error: no job folders under {tmp_path / 'empty'}; give a sweep folder or a runs folder"
    )


def test_a_preset_job_shows_its_paper_number_beside_the_measured_one(tmp_path: Path):
    job = fake_job(tmp_path / "0_repro", ["experiment=repro_iwae_vae1"], {"elbo_nats": -90.0})
    results = json.loads((job / "results.json").read_text())
    results["paper"] = {"metric": "iw_bound_nats", "value": -86.76, "measured": -88.0, "difference": -1.24}
    results["lr_schedule"] = {"kind": "burda", "paper_epochs": 3280, "run_epochs": 328, "shortened": True}
    (job / "results.json").write_text(json.dumps(results))
    fake_job(tmp_path / "1_plain", ["model=vanilla"], {"elbo_nats": -95.0})
    board = leaderboard(tmp_path)
    row = board.rows[0]
    assert (row["paper metric"], row["paper"], row["measured"]) == ("iw_bound_nats", -86.76, -88.0)
    assert row["measured − paper"] == -1.24 and row["schedule shortened"] is True
    assert board.rows[1]["paper"] is None
    table = markdown(board)
    assert "| paper metric | paper | measured | measured − paper | schedule shortened |" in table
    assert "-86.760" in table and "true" in table
