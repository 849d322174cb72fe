"""Multiruns: parallel local launcher, failing jobs that do not sink the sweep, Optuna search."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from tests.conftest import TINY, run_cli
from tests.wandb_records import offline_run

FAST = [*TINY, "trainer.max_epochs=1"]


def jobs(tmp_path: Path) -> list[Path]:
    (sweep,) = (tmp_path / "runs" / "multirun").iterdir()
    return sorted(
        (p for p in sweep.iterdir() if (p / ".hydra").is_dir()), key=lambda p: int(p.name.split("_")[0])
    )


def test_local_parallel_launcher_runs_a_four_job_sweep_as_one_wandb_group(tmp_path):
    # Two swept keys (models × betas), so each run's config must say which cell it trained.
    proc = run_cli([*FAST, "hydra/launcher=local", "model=vanilla,beta_vae", "beta=1,4", "-m"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = jobs(tmp_path)
    assert len(done) == 4
    hydra_cfg = OmegaConf.load(done[0] / ".hydra" / "hydra.yaml")
    assert "JoblibLauncher" in hydra_cfg.hydra.launcher._target_ and hydra_cfg.hydra.launcher.n_jobs == 2
    cells, groups, names, ids = set(), set(), set(), set()
    for job in done:
        results = json.loads((job / "results.json").read_text())
        assert results["test"]["elbo_nats"] < 0
        (run_dir,) = (job / "wandb").glob("offline-run-*")
        run = offline_run(run_dir)
        cells.add((results["model"], results["beta"], run["config"]["model"]["name"], run["config"]["beta"]))
        groups.add(run["group"])
        names.add(run["name"])
        ids.add(run["id"])
    assert cells == {(m, b, m, b) for m in ("vanilla", "beta_vae") for b in (1.0, 4.0)}
    # one group across the workers, named by the swept keys and the sweep folder
    assert groups == {f"model,beta-{done[0].parent.name}"} and len(names) == len(ids) == 4


def test_a_failing_job_keeps_the_other_results_and_is_reported(tmp_path):
    # optimizer.lr=1e6 diverges (the NaN policy stops it); the other two jobs are fine. (A config error,
    # such as likelihood=bernoulli with dataset.binarize=none, is refused before the sweep starts.)
    proc = run_cli([*FAST, "logger=csv", "optimizer.lr=1e-3,1e6,2e-3", "-m"], cwd=tmp_path)
    assert proc.returncode == 1
    ok0, failed, ok2 = jobs(tmp_path)
    assert (ok0 / "results.json").is_file() and (ok2 / "results.json").is_file()
    assert not (failed / "results.json").exists()
    record = json.loads((failed / "failed.json").read_text())
    assert record["job"] == 1 and any(o.startswith("optimizer.lr=1") for o in record["overrides"])
    assert "Diverged: training diverged" in record["error"] and Path(record["log"]).is_file()
    assert json.loads((ok0 / "results.json").read_text())["test"]["elbo_nats"] is not None
    summary, line = proc.stderr.strip().splitlines()[-2:]
    assert summary.startswith("vaezoo: 1 of 3 jobs failed")
    assert line.startswith("  job 1 (") and record["log"] in line


def test_optuna_preset_runs_three_trials_and_reports_the_best(tmp_path):
    proc = run_cli(
        [*FAST, "experiment=optuna_digits", "hydra.sweeper.n_trials=3", "logger=csv", "-m"], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = jobs(tmp_path)
    assert len(done) == 3
    objectives = [-json.loads((j / "results.json").read_text())["best_val_elbo_nats"] for j in done]
    best = OmegaConf.load(done[0].parent / "optimization_results.yaml")
    assert best.best_value == min(objectives)
    assert set(best.best_params) == {"beta", "optimizer.lr", "model.latent_dim"}
