"""Training through the real entry point: it must improve on the untrained model."""

from __future__ import annotations

import json

from tests.conftest import TINY, run_cli
from tests.wandb_records import offline_run
from vaezoo.stages.train import train


def test_short_training_beats_the_untrained_model_on_test_elbo(compose_cfg):
    # trainer.max_epochs=0 is refused as a likely mistake; zero steps, asked for explicitly, is not.
    untrained = train(compose_cfg(*TINY, "logger=csv", "+trainer.max_steps=0"))
    trained = train(compose_cfg(*TINY, "logger=csv", "trainer.max_epochs=6"))
    assert trained["steps"] > 0 and untrained["steps"] == 0
    assert trained["test"]["elbo_nats"] > untrained["test"]["elbo_nats"] + 5.0
    assert trained["test"]["iw_bound_nats"] >= trained["test"]["elbo_nats"] - 0.5
    assert trained["test"]["n_examples"] == 300


def test_sweep_over_models_and_betas_is_one_wandb_group(tmp_path):
    args = ["-m", "model=vanilla,beta_vae", "beta=1,4", *TINY, "trainer.max_epochs=1"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in (tmp_path / "runs" / "multirun").glob("*/*") if (p / ".hydra").is_dir())
    assert len(jobs) == 4
    runs = [offline_run(next((job / "wandb").glob("offline-run-*"))) for job in jobs]
    assert len({run["group"] for run in runs}) == 1
    assert len({run["id"] for run in runs}) == 4
    got = {(run["config"]["model"]["name"], run["config"]["beta"]) for run in runs}
    assert got == {("vanilla", 1), ("vanilla", 4), ("beta_vae", 1), ("beta_vae", 4)}
    for job in jobs:
        assert json.loads((job / "results.json").read_text())["test"]["elbo_nats"] < 0
