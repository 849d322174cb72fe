"""results.json has one typed schema (vaezoo.jobs.results): it round-trips, old files load, newer refuse."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vaezoo.errors import ConfigError
from vaezoo.jobs.folder import Job
from vaezoo.jobs.results import SCHEMA_VERSION, Results, load


def a_report() -> Results:
    return Results(
        model="vae",
        dataset="digits",
        beta=2.0,
        seed=3,
        test={"elbo_nats": -41.5, "iw_bound_nats": -40.25, "active_units": 7},
        metrics={"mig": {"values": {"mig": 0.25, "gap_shape": 0.5}, "seconds": 1.0}},
        best_val_elbo_nats=-42.0,
        checkpoints={"best": "checkpoints/best-epoch=1.ckpt", "last": None},
        environment={"python": "3.12"},
        extra={"written_by_a_plugin": [1, 2]},
    )


def test_a_report_round_trips_through_its_file(tmp_path: Path):
    path = a_report().save(tmp_path / "results.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert next(iter(data)) == "schema_version" and "paper" not in data  # unset optional sections left out
    assert data["written_by_a_plugin"] == [1, 2]  # unknown keys kept at the top level
    assert load(path) == a_report()
    assert load(path).metric_values("mig") == {"mig": 0.25, "gap_shape": 0.5}
    assert load(path).metric_values("dci") == {}


def test_a_nan_becomes_null_with_its_reason(tmp_path: Path):
    report = a_report()
    report.test["iw_bound_nats"] = math.nan
    loaded = load(report.save(tmp_path / "results.json"))
    assert loaded.test["iw_bound_nats"] is None and loaded.nulls == {"test.iw_bound_nats": "NaN"}


def test_a_file_without_a_version_is_version_0_and_loads(tmp_path: Path):
    old = {
        "model": "vae",
        "dataset": "digits",
        "test": {"elbo_nats": -50.0},
        "metrics": {"kl_per_dim": {"values": {"per_dim": [0.1, 0.2]}}},
        "environment": {"python": "3.11"},
        "resumed": False,
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(old))
    results = load(path)
    assert results.test == {"elbo_nats": -50.0} and results.environment == {"python": "3.11"}
    assert results.metric_values("kl_per_dim") == {"per_dim": [0.1, 0.2]}
    assert results.extra == {}
    results.save(path)  # saved again, it is a version-1 file that keeps every value it had
    saved = json.loads(path.read_text())
    assert saved["schema_version"] == 1 and {k: saved[k] for k in old} == old
    assert load(path) == results


def test_a_newer_version_is_refused_in_one_line(tmp_path: Path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1, "test": {}}))
    with pytest.raises(ConfigError) as err:
        load(path)
    message = str(err.value)
    assert "\n" not in message
    assert f"results schema version {SCHEMA_VERSION + 1}" in message and "upgrade vaezoo" in message


def test_broken_files_are_one_line_errors(tmp_path: Path):
    path = tmp_path / "results.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load(path)
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="is not a JSON object"):
        load(path)
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "missing.json")


def test_the_job_folder_reads_and_writes_through_the_schema(tmp_path: Path):
    job = Job(tmp_path)
    assert job.results is None
    job.write_results(a_report())
    assert job.results == a_report() and job.status == "finished"
