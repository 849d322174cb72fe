"""A job killed mid-epoch and resumed ends exactly where an uninterrupted one does (CPU, deterministic)."""

from __future__ import annotations

import json
import signal

import torch

from tests.conftest import DETERMINISTIC, run_cli
from tests.wandb_records import offline_run

# digits: 1347 training images / 64 = 22 steps per epoch; checkpoints every 5 steps (DETERMINISTIC), so a
# kill after step 30 leaves last.ckpt at step 25, three batches into the second epoch.


def weights(job) -> dict[str, torch.Tensor]:
    return torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_killed_job_resumes_to_the_same_result_and_wandb_run(straight_job, tmp_path):
    straight = straight_job
    killed = tmp_path / "killed"
    proc = run_cli(
        [
            *DETERMINISTIC,
            f"hydra.run.dir={killed}",
            "+callbacks.kill._target_=tests.faults.KillAtStep",
            "+callbacks.kill.step=30",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert not (killed / "results.json").exists()
    interrupted = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)
    assert interrupted["global_step"] == 25 and interrupted["epoch"] == 1  # mid-epoch

    # The documented resume command. The job's own overrides (kill callback included) are reloaded and
    # the ones given here are applied after them, so ~callbacks.kill keeps the resumed run alive.
    proc = run_cli([f"resume={killed}", "~callbacks.kill"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    a = json.loads((straight / "results.json").read_text())
    b = json.loads((killed / "results.json").read_text())
    assert b["resumed"] is True and a["steps"] == b["steps"] == 44
    assert a["test"] == b["test"]  # ELBO, IW bound (sampled), active units: bit for bit
    assert a["best_val_elbo_nats"] == b["best_val_elbo_nats"]
    wa, wb = weights(straight), weights(killed)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)

    # The killed process's offline run may be cut short; its folder still carries the run id.
    first, second = sorted((killed / "wandb").glob("offline-run-*"))
    run_id = json.loads((killed / "run.json").read_text())["wandb_id"]
    assert first.name.endswith(f"-{run_id}") and second.name.endswith(f"-{run_id}")
    assert offline_run(second)["id"] == run_id
    assert offline_run(second)["exit"] == 0
    assert (killed / "metrics.before-resume-1.csv").is_file() and (killed / "metrics.csv").is_file()
