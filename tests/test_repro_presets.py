"""Paper-protocol presets: each composes, runs a few steps, and records its paper number and budget."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.conftest import REPO, run_cli
from vaezoo.errors import ConfigError
from vaezoo.training.lr_schedules import build_schedule, burda

MNIST_PRESETS = sorted(
    p.stem
    for p in (REPO / "conf" / "experiment").glob("repro_*.yaml")
    # directly, or through the shared MNIST protocol (experiment/_mnist*.yaml) or another MNIST preset
    if any(line in p.read_text() for line in ("dataset: mnist", "- _mnist", "- repro_iwae_vae1"))
)
FEW_STEPS = [
    "hardware=cpu",
    "logger=csv",
    "trainer.max_epochs=2",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=1",
    "trainer.enable_progress_bar=false",
    "eval.max_examples=20",
    "eval.iw_k=4",
    "eval.iw_chunk=4",
    "images.n_images=4",
    "pictures.enabled=false",  # the presets' numbers are what is checked here; pictures have their tests
]


def run_preset_briefly(preset: str, tmp_path, overrides: list[str]) -> dict:
    """Run ``experiment=preset`` a few steps on <tmp_path>/data into <tmp_path>/job; its results.json."""
    job = tmp_path / "job"
    proc = run_cli(
        [
            f"experiment={preset}",
            *FEW_STEPS,
            "+trainer.limit_test_batches=1",
            *overrides,
            f"paths.data={tmp_path / 'data'}",
            f"hydra.run.dir={job}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((job / "results.json").read_text())


def test_burda_schedule_matches_the_paper_and_keeps_its_shape_when_shortened():
    full = burda(3280)
    factors = [full.factor(e) for e in range(3280)]
    # Stage i lasts 3^i epochs at 10^(-i/7): 1, 3, 9, ... epochs, the last at a tenth of the base rate.
    changes = [e for e in range(1, 3280) if factors[e] != factors[e - 1]]
    assert changes == [1, 4, 13, 40, 121, 364, 1093]
    assert factors[0] == 1 and math.isclose(factors[-1], 0.1)
    assert full.record() == {"kind": "burda", "paper_epochs": 3280, "run_epochs": 3280, "shortened": False}
    short = burda(328)
    short_changes = [e for e in range(1, 328) if short.factor(e) != short.factor(e - 1)]
    # The same stage ends a tenth as late; the first stages (under an epoch once shortened) merge.
    assert short_changes == [1, 4, 12, 36, 109]
    assert math.isclose(short.factor(327), 0.1) and short.record()["shortened"]


def test_unknown_schedule_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"lr_schedule\.kind='cosine' is unknown; choose one of burda"):
        build_schedule({"kind": "cosine"}, 10)


def test_mnist_presets_run_a_few_steps_and_record_paper_and_budget(tmp_path, mnist_root):
    assert {"repro_iwae_vae1", "repro_iwae_vae2", "repro_iwae_k50", "repro_lvae"} <= set(MNIST_PRESETS)
    sweep = tmp_path / "sweep"
    proc = run_cli(
        [
            "-m",
            f"experiment={','.join(MNIST_PRESETS)}",
            *FEW_STEPS,
            f"paths.data={mnist_root}",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in sweep.iterdir() if (p / "results.json").is_file())
    assert len(jobs) == len(MNIST_PRESETS), proc.stderr[-3000:]
    for job in jobs:
        results = json.loads((job / "results.json").read_text())
        paper = results["paper"]
        assert paper["k"] == 5000 and paper["value"] < -80 and "et al." in paper["source"]
        assert paper["measured"] == results["test"][paper["metric"]]
        schedule = results["lr_schedule"]
        if schedule is not None:  # Burda's schedule, compressed into 2 epochs, ends at a tenth of the rate
            assert schedule == {"kind": "burda", "paper_epochs": 3280, "run_epochs": 2, "shortened": True}
            state = torch.load(job / "checkpoints" / "last.ckpt", weights_only=False)["lr_schedulers"][0]
            assert math.isclose(state["_last_lr"][0], 1e-3 * 0.1, rel_tol=1e-6)


def test_cifar10_preset_runs_a_few_steps_on_a_standin_and_records_bits_per_dim(tmp_path):
    from tests.standins import write_cifar10

    write_cifar10(tmp_path / "data")
    results = run_preset_briefly(
        "repro_vqvae_cifar10",
        tmp_path,
        ["dataset.val_size=5", "dataset.batch_size=8", "model.channels=[8,16]", "model.code_dim=8"],
    )
    paper = results["paper"]
    assert (paper["metric"], paper["value"]) == ("bits_per_dim", 4.67)
    assert paper["measured"] == results["test"]["bits_per_dim"] > 0


def test_dsprites_preset_runs_a_few_steps_and_records_its_disentanglement_paper_number(tmp_path):
    """Generates dSprites (~3 s of CPU) into a fresh data root, trains 3 steps, scores the metrics."""
    small = {
        "mig": {"num_train": 200},
        "dci": {"num_train": 200, "num_test": 100},
        "sap": {"num_train": 200, "num_test": 100},
        "beta_vae_score": {"num_train": 20, "num_eval": 10, "batch_size": 8},
        "factor_vae_score": {
            "num_train": 20,
            "num_eval": 10,
            "batch_size": 8,
            "num_variance_estimate": 200,
        },
    }
    settings = [f"+eval.settings.{m}.{k}={v}" for m, kv in small.items() for k, v in kv.items()]
    results = run_preset_briefly(
        "repro_betavae_dsprites", tmp_path, ["eval.batch_size=20", "pictures.enabled=false", *settings]
    )
    paper = results["paper"]
    assert paper["metric"] == "metrics.beta_vae_score.eval_accuracy" and paper["value"] == 0.9923
    measured = results["metrics"]["beta_vae_score"]["values"]["eval_accuracy"]
    assert paper["measured"] == measured and 0 <= measured <= 1
    assert {"mig", "dci", "sap", "factor_vae_score"} <= set(results["metrics"])
    assert results["beta"] == 4.0 and results["model"] == "beta_vae"
