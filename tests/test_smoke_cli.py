"""The CLI end to end on digits: the product's usage line as a multirun."""

from __future__ import annotations

import json

from tests.conftest import TINY, run_cli
from tests.wandb_records import offline_run


def test_beta_vae_multirun_leaves_wandb_run_results_and_checkpoints(tmp_path):
    proc = run_cli(["model=beta_vae", "beta=4", *TINY, "-m"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (job,) = [p for p in (tmp_path / "runs" / "multirun").glob("*/*") if (p / ".hydra").is_dir()]
    results = json.loads((job / "results.json").read_text())
    assert results["beta"] == 4.0
    for key in ("elbo_nats", "iw_bound_nats", "active_units", "log_px_z_nats", "kl_nats"):
        assert key in results["test"]
    assert (job / "checkpoints" / "last.ckpt").is_file()
    assert list((job / "checkpoints").glob("best-*.ckpt"))
    assert (job / "images" / "samples.png").is_file() and (job / "images" / "reconstructions.png").is_file()
    assert (job / "metrics.csv").is_file() and (job / "config.yaml").is_file()
    (run_dir,) = (job / "wandb").glob("offline-run-*")
    run = offline_run(run_dir)
    assert run["config"]["beta"] == 4.0
    assert run["config"]["model"]["name"] == "beta_vae"
    assert run["group"] == f"sweep-{job.parent.name}"  # no swept key: "sweep", then the sweep folder
    assert "model=beta_vae" in run["tags"]
    assert "test/iw_bound_nats" in run["summary"]
    assert run["exit"] == 0
