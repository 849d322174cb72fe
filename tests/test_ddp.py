"""hardware=ddp_cpu: two gloo processes train one job, log one W&B run and report exact test metrics."""

from __future__ import annotations

import csv
import json

import pytest

from tests.conftest import TINY, run_cli
from tests.wandb_records import offline_run


def test_two_process_ddp_logs_one_run_and_evaluates_every_test_example_once(tmp_path):
    job = tmp_path / "job"
    # 300 test images in batches of 64 over 2 processes: 5 batches, which Lightning's default
    # (padding) distributed sampler would split 3 + 3 by evaluating one batch twice.
    args = [*TINY, "hardware=ddp_cpu", "dataset.eval_batch_size=64", f"hydra.run.dir={job}"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    results = json.loads((job / "results.json").read_text())
    assert results["world_size"] == 2 and results["global_batch_size"] == 2 * 64
    assert results["test"]["n_examples"] == 300

    # trainer.test's metric is averaged across the two processes' shards; the report recomputes it
    # on rank 0 alone over the whole split with the same weights. The KL term is deterministic.
    rows = [r for r in csv.DictReader((job / "metrics.csv").open()) if r.get("test/kl")]
    assert len(rows) == 1
    assert float(rows[0]["test/kl"]) == pytest.approx(results["test"]["kl_nats"], rel=1e-5)

    (run_dir,) = (job / "wandb").glob("offline-run-*")  # one W&B run, from rank 0
    run = offline_run(run_dir)
    assert run["exit"] == 0 and "test/elbo" in run["summary"] and "val/elbo" in run["summary"]
    assert run["summary"]["test/n_examples"] == 300
    assert (job / "train_ddp_process_1.log").is_file()  # the second process ran in the same folder


def test_local_multirun_with_a_relaunching_strategy_is_refused_in_one_line(tmp_path):
    proc = run_cli([*TINY, "hardware=ddp_cpu", "-m"], cwd=tmp_path)
    assert proc.returncode == 1
    summary, job = proc.stderr.strip().splitlines()[-2:]
    assert summary.startswith("vaezoo: 1 of 1 jobs failed")
    assert "local multirun" in job and "hydra/launcher=slurm" in job and "vaezoo.log" in job
