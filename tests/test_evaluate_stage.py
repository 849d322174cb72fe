"""``python -m vaezoo.evaluate``: metrics into every job's results.json and its own W&B run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import TINY, run_cli
from tests.wandb_records import offline_run


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cwd = tmp_path_factory.mktemp("evaluate")
    proc = run_cli([*TINY, "trainer.max_epochs=1", "logger.mode=offline", "beta=1,2", "-m"], cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = (cwd / "runs" / "multirun").iterdir()
    return folder


def jobs(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if (p / "results.json").is_file())


def test_training_writes_the_datasets_default_metrics(sweep):
    for job in jobs(sweep):
        metrics = json.loads((job / "results.json").read_text())["metrics"]
        assert set(metrics) == {"kl_per_dim"}  # conf/dataset/digits.yaml: eval.metrics
        assert len(metrics["kl_per_dim"]["values"]["per_dim"]) == 20 and metrics["kl_per_dim"]["seconds"] >= 0


def test_evaluate_updates_every_jobs_results_and_wandb_run(sweep):
    before = {job: json.loads((job / "results.json").read_text()) for job in jobs(sweep)}
    proc = run_cli(
        [f"run={sweep}", "eval.metrics=[iw_bound,active_units]", "+eval.settings.iw_bound.k=4"],
        cwd=sweep.parent,
        module="vaezoo.stages.evaluate",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(before) == 2
    for job, old in before.items():
        new = json.loads((job / "results.json").read_text())
        kept = {k: v for k, v in old.items() if k != "metrics"}
        assert {k: v for k, v in new.items() if k != "metrics"} == kept
        assert set(new["metrics"]) == {"kl_per_dim", "iw_bound", "active_units"}  # earlier metrics kept
        iw = new["metrics"]["iw_bound"]
        assert iw["settings"] == {"k": 4, "chunk": 100} and iw["values"]["nats"] < 0
        assert new["metrics"]["active_units"]["values"]["count"] == old["test"]["active_units"]
        assert (job / "images" / "traversals.png").is_file()  # the stage draws the pictures too
        run_id = json.loads((job / "run.json").read_text())["wandb_id"]
        runs = sorted((job / "wandb").glob(f"offline-run-*-{run_id}"))
        assert len(runs) == 2  # training, then the evaluation stage resuming the same run id
        summary = offline_run(runs[-1])["summary"]
        assert summary["metrics/iw_bound/nats"] == pytest.approx(iw["values"]["nats"])
        assert summary["metrics/active_units/count"] == new["metrics"]["active_units"]["values"]["count"]


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ("[nope]", "unknown metric 'nope' in eval.metrics; registered metrics:"),
        ("[mig]", "metric mig cannot run: dataset digits has no ground-truth factors"),
    ],
)
def test_unknown_or_inapplicable_metric_is_a_one_line_error(sweep, metrics, message):
    (job, *_) = jobs(sweep)
    proc = run_cli(
        [f"run={job}", f"eval.metrics={metrics}"], cwd=sweep.parent, module="vaezoo.stages.evaluate"
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert message in lines[-1] and len([line for line in lines if "Traceback" in line]) == 0, proc.stderr
