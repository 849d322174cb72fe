"""The CLI runs every family in one multirun on digits, and the VQ-VAE's prior stage runs on its job."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TINY, run_cli
from tests.wandb_records import offline_run
from vaezoo.models import MODELS

FAMILIES = sorted(MODELS)  # every registered family, new ones included


def run_prior(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run_cli(args, cwd=cwd, module="vaezoo.stages.prior")


@pytest.fixture(scope="module")
def zoo_multirun(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cwd = tmp_path_factory.mktemp("zoo")
    proc = run_cli(["-m", f"model={','.join(FAMILIES)}", *TINY, "trainer.log_every_n_steps=10"], cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = {}
    for job in sorted(p for p in (cwd / "runs" / "multirun").glob("*/*") if (p / ".hydra").is_dir()):
        jobs[json.loads((job / "results.json").read_text())["model"]] = job
    return jobs


def test_every_family_runs_in_one_wandb_group(zoo_multirun):
    assert sorted(zoo_multirun) == sorted(FAMILIES)
    groups = set()
    for model, job in zoo_multirun.items():
        results = json.loads((job / "results.json").read_text())["test"]
        assert results["iw_bound_nats"] is not None and results["recon_mse"] > 0, model
        assert (job / "checkpoints" / "last.ckpt").is_file(), model
        assert (job / "images" / "reconstructions.png").is_file(), model
        # every family samples, except the VQ-VAE before its prior is trained
        assert (job / "images" / "samples.png").is_file() == (model != "vqvae"), model
        (run_dir,) = (job / "wandb").glob("offline-run-*")
        run = offline_run(run_dir)
        assert run["exit"] == 0 and f"model={model}" in run["tags"]
        groups.add(run["group"])
        if model == "hvae":
            assert set(results["kl_per_group_nats"]) == {"z1", "z2", "z3"}
            assert {"train/kl_z1", "val/kl_z3", "train/grad_norm"} <= run["history_keys"]
        if model == "vqvae":
            assert {"train/vq/perplexity", "train/vq/codes_used", "train/vq/commitment"} <= run[
                "history_keys"
            ]
            assert not any(k.startswith("images/samples") for k in run["history_keys"])
        else:
            assert any(k.startswith("images/samples") for k in run["history_keys"]), model
    assert len(groups) == 1 and groups.pop() == f"model-{next(iter(zoo_multirun.values())).parent.name}"
    log = (zoo_multirun["vqvae"] / "vaezoo.log").read_text()
    assert log.count("no sample grid for this model: no prior trained") == 1


def test_vqvae_prior_stage_makes_the_run_sample(zoo_multirun, tmp_path):
    job = zoo_multirun["vqvae"]
    args = [f"run={job}", "hardware=cpu", "trainer.max_epochs=2", "trainer.enable_progress_bar=false"]
    proc = run_prior([*args, "prior.channels=16", "prior.layers=2", "n_samples=16"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = job / "prior"
    assert (out / "prior.pt").is_file() and (out / "samples.png").is_file()
    report = json.loads((out / "results.json").read_text())
    assert report["test_code_nll_nats"] < report["uniform_prior_nll_nats"]  # it learned something
    (run_dir,) = (out / "wandb").glob("offline-run-*")
    run = offline_run(run_dir)
    assert any(k.startswith("images/prior_samples") for k in run["history_keys"])
    assert run["group"] == job.parent.name

    from vaezoo.jobs.load import load_run

    loaded = load_run(job)
    assert loaded.model.can_sample
    images = loaded.model.sample(4)
    assert images.shape == (4, 1, 8, 8) and 0 <= float(images.min()) <= float(images.max()) <= 1


def test_prior_stage_errors_are_one_line(zoo_multirun, tmp_path):
    proc = run_prior([], cwd=tmp_path)
    assert proc.returncode == 2 and "give the finished VQ-VAE job folder" in proc.stderr
    proc = run_prior([f"run={tmp_path / 'nowhere'}"], cwd=tmp_path)
    assert proc.returncode == 2 and "is not a finished vaezoo job folder" in proc.stderr
    assert not (tmp_path / "nowhere").exists()
    proc = run_prior([f"run={zoo_multirun['vanilla']}", "hardware=cpu"], cwd=tmp_path)
    assert proc.returncode != 0 and "has no discrete codes" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_iwae_on_a_model_without_stochastic_posterior_is_a_one_line_error(tmp_path):
    proc = run_cli(["model=vqvae", "objective.k=4", *TINY], cwd=tmp_path)
    assert proc.returncode != 0
    assert "objective.k=4 (IWAE) needs a model with a stochastic" in proc.stderr
    assert "Traceback" not in proc.stderr
