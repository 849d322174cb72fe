"""A job's checkpoints are found in its own folder (issue 19, item 3): a runs folder moved with ``mv``
or copied with ``cp -r`` resumes and evaluates, and a checkpoint of another job is refused.

Lightning stores the best checkpoint's absolute path inside ``last.ckpt``; before, a moved job's
resume tested that old path (a traceback, after ``metrics.csv`` had been renamed away) and a copied
job's resume tested the original's checkpoint.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from tests.bad_input_case import folder_hash
from tests.conftest import TINY, run_cli

ONE_EPOCH = [*TINY, "logger=csv", "trainer.max_epochs=1", "checkpoint.every_n_train_steps=5"]


def stored_best_path(job: Path) -> str:
    state = torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)
    return next(c["best_model_path"] for k, c in state["callbacks"].items() if c.get("best_model_path"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runs folder holding one finished one-epoch job (``runs/job``)."""
    root = tmp_path_factory.mktemp("moved")
    proc = run_cli([*ONE_EPOCH, f"hydra.run.dir={root / 'runs' / 'job'}"], cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "runs" / "job"


def test_checkpoints_record_the_job_id(trained: Path) -> None:
    job_id = json.loads((trained / "run.json").read_text())["wandb_id"]
    for path in (trained / "checkpoints").glob("*.ckpt"):
        assert torch.load(path, weights_only=True)["vaezoo_job_id"] == job_id, path.name


def test_a_runs_folder_moved_with_mv_resumes_and_evaluates(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = run_cli([*ONE_EPOCH, f"hydra.run.dir={runs / 'job'}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    moved = tmp_path / "elsewhere"
    subprocess.run(["mv", str(runs), str(moved)], check=True)
    job = moved / "job"
    old_best = stored_best_path(job)
    assert not Path(old_best).exists()  # last.ckpt names a path that no longer exists

    # No further epoch, so no new best: the test stage must find the best checkpoint by its name here
    # (it used to open the stored old path: a traceback, after metrics.csv had been renamed away).
    proc = run_cli([f"resume={job}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    results = json.loads((job / "results.json").read_text())
    assert results["resumed"] is True
    assert Path(results["checkpoints"]["best"]).parent == (job / "checkpoints").resolve()
    assert Path(results["checkpoints"]["best"]).is_file()
    assert (job / "metrics.before-resume-1.csv").is_file() and (job / "metrics.csv").is_file()

    proc = run_cli(
        [f"run={job}", "eval.test=true", "pictures.enabled=false"], cwd=tmp_path, module="vaezoo.evaluate"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((job / "results.json").read_text())["test"]["elbo_nats"] < 0


def test_a_copied_job_resumes_from_its_own_checkpoints(trained: Path, tmp_path: Path) -> None:
    original = tmp_path / "original"
    shutil.copytree(trained, original)
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(original), str(copy)], check=True)
    # The copy's last.ckpt names the original's best checkpoint, which exists: a hint, never read.
    state = torch.load(copy / "checkpoints" / "last.ckpt", weights_only=True)
    for callback in state["callbacks"].values():
        if callback.get("best_model_path"):
            callback["best_model_path"] = str(
                original / "checkpoints" / Path(callback["best_model_path"]).name
            )
    torch.save(state, copy / "checkpoints" / "last.ckpt")
    for path in (original / "checkpoints").glob("best-*.ckpt"):  # reading it would fail loudly
        path.write_bytes(b"not this job's checkpoint")
    before = folder_hash(original)

    proc = run_cli([f"resume={copy}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = Path(json.loads((copy / "results.json").read_text())["checkpoints"]["best"])
    assert best.parent == (copy / "checkpoints").resolve()
    assert folder_hash(original) == before  # the original was neither read for results nor pruned


def test_load_run_refuses_a_checkpoint_of_another_job(trained: Path, tmp_path: Path) -> None:
    from vaezoo.errors import UnsafeInputError
    from vaezoo.jobs.load import load_run

    job = tmp_path / "job"
    shutil.copytree(trained, job)
    for path in (job / "checkpoints").glob("best-*.ckpt"):
        state = torch.load(path, weights_only=True)
        state["vaezoo_job_id"] = "0therjob"
        torch.save(state, path)
    with pytest.raises(UnsafeInputError, match="written by job 0therjob, not by this job"):
        load_run(job)
    load_run(job, checkpoint="last")  # its own last.ckpt still loads


def test_the_job_checkpoint_keeps_lightnings_state_key(tmp_path: Path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    from vaezoo.training.job_checkpoint import JobCheckpoint

    kwargs = {"dirpath": tmp_path, "monitor": "val/elbo", "mode": "max", "save_last": True}
    assert JobCheckpoint(**kwargs, job_id="abc").state_key == ModelCheckpoint(**kwargs).state_key
    restored = JobCheckpoint(**kwargs)
    restored.load_state_dict(
        {
            "dirpath": "/old/runs/job/checkpoints",
            "best_model_path": "/old/runs/job/checkpoints/best-epoch003.ckpt",
            "best_model_score": torch.tensor(-90.0),
            "best_k_models": {"/old/runs/job/checkpoints/best-epoch003.ckpt": torch.tensor(-90.0)},
            "kth_best_model_path": "/old/runs/job/checkpoints/best-epoch003.ckpt",
            "last_model_path": "/old/runs/job/checkpoints/last.ckpt",
        }
    )
    here = str(Path(restored.dirpath) / "best-epoch003.ckpt")
    assert restored.best_model_path == here and list(restored.best_k_models) == [here]
    assert restored.last_model_path == str(Path(restored.dirpath) / "last.ckpt")
    assert float(restored.best_model_score) == -90.0  # the score survives the move too


def test_a_job_that_lost_run_json_keeps_its_checkpoints_id(trained: Path, tmp_path: Path) -> None:
    job = tmp_path / "job"
    shutil.copytree(trained, job)
    job_id = json.loads((job / "run.json").read_text())["wandb_id"]
    (job / "run.json").unlink()
    proc = run_cli([f"resume={job}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the same id as its best checkpoint, which therefore stays its own on the next resume
    assert json.loads((job / "run.json").read_text())["wandb_id"] == job_id
