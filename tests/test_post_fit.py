"""One post-fit evaluation: the same finished job evaluated at training's end and again with
``python -m vaezoo.evaluate`` gives identical results.json numbers, picture files and W&B summary."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import TINY, run_cli
from tests.wandb_records import offline_run
from vaezoo.post_fit import PostFitSettings

PICTURES = ["pictures.enabled=true", "pictures.n_examples=60", "pictures.tsne_points=40"]


@pytest.fixture(scope="module")
def evaluated_twice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict, Path]:
    """A tiny job with pictures, its results.json and images/ after training, then after the stage."""
    cwd = tmp_path_factory.mktemp("post_fit")
    job = cwd / "job"
    args = [a for a in TINY if not a.startswith("pictures.")]
    proc = run_cli(
        [*args, *PICTURES, "trainer.max_epochs=1", "logger.mode=offline", f"hydra.run.dir={job}"], cwd=cwd
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    at_training = json.loads((job / "results.json").read_text())
    shutil.copytree(job / "images", cwd / "images_at_training")
    proc = run_cli([f"run={job}"], cwd=cwd, module="vaezoo.stages.evaluate")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return job, at_training, json.loads((job / "results.json").read_text()), cwd / "images_at_training"


def test_the_stage_repeats_trainings_numbers(evaluated_twice):
    _, at_training, again, _ = evaluated_twice
    assert at_training["schema_version"] == again["schema_version"] == 1
    assert at_training["test"]["iw_bound_nats"] is not None  # a sampled bound: the seed is what fixes it
    assert again["test"] == at_training["test"]
    strip = lambda metrics: {n: {k: v for k, v in e.items() if k != "seconds"} for n, e in metrics.items()}  # noqa: E731
    assert set(again["metrics"]) == {"kl_per_dim"}
    assert strip(again["metrics"]) == strip(at_training["metrics"])
    assert {k: v for k, v in again.items() if k not in ("test", "metrics")} == {
        k: v for k, v in at_training.items() if k not in ("test", "metrics")
    }


def test_the_stage_redraws_byte_identical_pictures(evaluated_twice):
    job, _, _, before = evaluated_twice
    drawn = sorted(p.name for p in before.glob("*.png") if "epoch" not in p.name)
    assert {"traversals.png", "tsne.png", "anomaly_histograms.png", "curves.png"} <= set(drawn)
    changed = [name for name in drawn if (job / "images" / name).read_bytes() != (before / name).read_bytes()]
    assert changed == []


def test_both_write_the_same_wandb_summary(evaluated_twice):
    job, at_training, _, _ = evaluated_twice
    run_id = json.loads((job / "run.json").read_text())["wandb_id"]
    train_run, stage_run = (offline_run(p) for p in sorted((job / "wandb").glob(f"offline-run-*-{run_id}")))
    written = {k: v for k, v in stage_run["summary"].items() if k.startswith(("test/", "metrics/"))}
    assert {"test/elbo_nats", "test/iw_bound_nats", "metrics/kl_per_dim/total"} <= set(written)
    assert written == {k: train_run["summary"][k] for k in written}
    assert written["test/elbo_nats"] == pytest.approx(at_training["test"]["elbo_nats"])
    logged = {key.split("/")[1] for key in stage_run["history_keys"] if key.startswith("pictures/")}
    assert logged == {key.split("/")[1] for key in train_run["history_keys"] if key.startswith("pictures/")}


def test_settings_come_from_the_job_unless_the_stage_names_them(compose_cfg):
    job_cfg = compose_cfg("pictures.tsne_points=123", "eval.batch_size=7", "seed=5")
    from_job = PostFitSettings.from_config(job_cfg)
    assert (from_job.seed, from_job.eval.batch_size, from_job.pictures.tsne_points) == (5, 7, 123)
    assert from_job.eval.metrics == tuple(job_cfg.eval.metrics) and not from_job.strict_metrics
    stage = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "evaluate.yaml")
    stage.run = "x"
    assert PostFitSettings.from_config(job_cfg, stage).eval == from_job.eval  # every null: the job's own
    assert PostFitSettings.from_config(job_cfg, stage).pictures == from_job.pictures
    stage.seed, stage.eval.iw_k, stage.pictures.tsne_points, stage.eval.metrics = 9, 3, 11, ["mig"]
    over = PostFitSettings.from_config(job_cfg, stage)
    assert (over.seed, over.eval.iw_k, over.pictures.tsne_points, over.eval.metrics) == (9, 3, 11, ("mig",))
    assert over.strict_metrics and over.eval.batch_size == 7


def test_the_stage_evaluates_where_training_did_when_it_can(caplog, monkeypatch):
    import torch

    from vaezoo.stages.evaluate import evaluation_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert evaluation_device("cpu", "cuda:0") == "cpu"  # device= given: used as given
    assert evaluation_device(None, "cpu") == "cpu" and evaluation_device(None, None) == "cpu"
    with caplog.at_level("WARNING"):
        assert evaluation_device(None, "cuda:0") == "cpu"
    assert "evaluated on cuda:0 at training's end, which this machine lacks" in caplog.text
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert evaluation_device(None, "cuda:0") == "cuda:0"
