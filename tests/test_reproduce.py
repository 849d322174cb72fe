"""``reproduce=<job>`` reruns a finished job into a new folder and compares its results metric by metric."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import TINY, run_cli
from vaezoo.jobs.provenance import compare_results

DETERMINISTIC = [*TINY, "seed=3", "trainer.deterministic=true", "logger=csv"]


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished deterministic job; reproduce= only reads it (tests that change it take a copy)."""
    root = tmp_path_factory.mktemp("reproduce")
    job = root / "original"
    proc = run_cli([*DETERMINISTIC, f"hydra.run.dir={job}"], cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return job


def test_reproducing_a_deterministic_cpu_job_gives_identical_results(original, tmp_path):
    job = original
    env = json.loads((job / "results.json").read_text())["environment"]
    assert env["lock_sha256"] and env["torch"] and env["device"] == "cpu" and "container" in env
    copy = tmp_path / "copy"
    proc = run_cli([f"reproduce={job}", f"hydra.run.dir={copy}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"reproduction of {job}" in proc.stdout
    section = json.loads((copy / "results.json").read_text())["reproduction"]
    assert section["counts"]["differs"] == 0 and section["counts"]["within"] == 0, section
    assert section["counts"]["identical"] >= 8  # ELBO, its parts, IW bound, active units, MSE, ...
    assert "lock file changed" not in proc.stdout


def test_a_changed_lock_is_said_before_anything_trains(original, tmp_path):
    job = shutil.copytree(original, tmp_path / "original")
    results = json.loads((job / "results.json").read_text())
    results["environment"]["lock_sha256"] = "0" * 64
    (job / "results.json").write_text(json.dumps(results))
    proc = run_cli(
        [f"reproduce={job}", f"hydra.run.dir={tmp_path / 'copy'}", "trainer.max_epochs=1"], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout  # Hydra logs to stdout (and the job's vaezoo.log)
    assert "lock file changed" in log
    assert log.index("lock file changed") < log.index("parameters")  # before the model is even built
    # A changed setting given on the command line is reported as a config difference, then runs.
    assert "trainer.max_epochs: 2 then, 1 now" in log


def test_reproduce_refuses_a_folder_that_is_not_a_finished_job(tmp_path):
    proc = run_cli([f"reproduce={tmp_path}"], cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("vaezoo: error: reproduce=")


def test_comparison_separates_identical_close_and_different_values():
    rows = {
        r["metric"]: r["status"]
        for r in compare_results(
            {"test": {"elbo_nats": -80.0, "kl_nats": 5.0, "iw_bound_nats": -70.0}, "train_seconds": 3.0},
            {"test": {"elbo_nats": -80.0, "kl_nats": 5.000001, "iw_bound_nats": -75.0}, "train_seconds": 9.0},
        )
    }
    assert rows == {"test.elbo_nats": "identical", "test.kl_nats": "within", "test.iw_bound_nats": "differs"}
