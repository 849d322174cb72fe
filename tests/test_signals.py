"""Real SIGTERM and SIGINT: last.ckpt saved, exit 143 / 130, the resume ends where an uninterrupted
run ends (CPU, deterministic) as the same W&B run; in a sweep the interrupted job stops the sweep."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch

from tests.conftest import DETERMINISTIC, run_cli
from tests.wandb_records import offline_run

# digits: 22 steps per epoch; the signal arrives after step 30, mid-way through the second epoch.
SIGNAL_AT_30 = ["+callbacks.kill._target_=tests.faults.SignalAtStep", "+callbacks.kill.step=30"]


def last_line(stderr: str) -> str:
    return [line for line in stderr.splitlines() if line.strip()][-1]


def assert_resumes_to(straight: Path, job: Path, cwd: Path) -> None:
    run_id = json.loads((job / "run.json").read_text())["wandb_id"]
    proc = run_cli([f"resume={job}", "~callbacks.kill"], cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a = json.loads((straight / "results.json").read_text())
    b = json.loads((job / "results.json").read_text())
    assert b["resumed"] is True and a["steps"] == b["steps"] == 44
    assert a["test"] == b["test"] and a["best_val_elbo_nats"] == b["best_val_elbo_nats"]
    wa = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    wb = torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not (job / "failed.json").exists()  # the record of the interruption goes once the job finishes
    first, second = sorted((job / "wandb").glob("offline-run-*"))
    assert first.name.endswith(f"-{run_id}") and second.name.endswith(f"-{run_id}")
    assert offline_run(second)["id"] == run_id and offline_run(second)["exit"] == 0


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_saves_exits_and_resumes_to_the_same_result(straight_job, tmp_path, signum, status):
    job = tmp_path / "job"
    proc = run_cli(
        [*DETERMINISTIC, *SIGNAL_AT_30, f"+callbacks.kill.signum={int(signum)}", f"hydra.run.dir={job}"],
        cwd=tmp_path,
    )
    assert proc.returncode == status, proc.stderr[-3000:]
    line = last_line(proc.stderr)
    assert f"interrupted by {signal.Signals(signum).name}" in line and f"resume={job}" in line, line
    assert "Traceback" not in proc.stderr
    assert not (job / "results.json").exists()
    saved = torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 30  # saved at the signal, not the every-5-steps save before it
    failed = json.loads((job / "failed.json").read_text())
    assert failed["interrupted"] == int(signum) and failed["resume"] == f"python -m vaezoo resume={job}"
    run_id = json.loads((job / "run.json").read_text())["wandb_id"]
    (interrupted,) = (job / "wandb").glob("offline-run-*")
    assert offline_run(interrupted)["exit"] == status and interrupted.name.endswith(run_id)
    assert_resumes_to(straight_job, job, tmp_path)


def test_sigterm_stops_a_sweep_and_its_job_resumes(straight_job, tmp_path):
    runs = tmp_path / "runs"
    proc = run_cli([*DETERMINISTIC, *SIGNAL_AT_30, "seed=7,8", f"paths.runs={runs}", "-m"], cwd=tmp_path)
    assert proc.returncode == 143, proc.stderr[-3000:]
    assert "interrupted by SIGTERM" in last_line(proc.stderr)
    (sweep,) = (runs / "multirun").iterdir()
    jobs = sorted(p for p in sweep.iterdir() if (p / ".hydra").is_dir())
    assert len(jobs) == 1 and jobs[0].name.startswith("0_")  # the second job never started
    failed = json.loads((jobs[0] / "failed.json").read_text())
    assert failed["interrupted"] == signal.SIGTERM and "resume=" in failed["resume"]
    assert_resumes_to(straight_job, jobs[0], tmp_path)


def test_slurm_requeue_resumes_the_job_in_its_folder(straight_job, tmp_path):
    """Lightning's SLURM handler (SIGUSR1: checkpoint + scontrol requeue), then the requeued batch
    script: the same command finds its folder and ends where the uninterrupted run ends."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol.calls"
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    scontrol.chmod(0o755)
    slurm = {
        "SLURM_JOB_ID": "4242",
        "SLURM_NTASKS": "1",
        "SLURM_JOB_NAME": "vaezoo",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    runs = tmp_path / "runs"
    args = [
        *DETERMINISTIC,
        "+callbacks.requeue._target_=tests.faults.SlurmRequeueAtStep",
        "+callbacks.requeue.step=30",
        f"paths.runs={runs}",
    ]
    proc = run_cli(args, cwd=tmp_path, **slurm)
    assert proc.returncode == 143, proc.stderr[-3000:]
    assert calls.read_text().split() == ["requeue", "4242"]
    (job,) = runs.glob("*-slurm4242")
    assert (job / "hpc_ckpt_1.ckpt").is_file() and (job / "checkpoints" / "last.ckpt").is_file()
    run_id = json.loads((job / "run.json").read_text())["wandb_id"]

    proc = run_cli(args, cwd=tmp_path, SLURM_RESTART_COUNT="1", **slurm)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"SLURM requeued this job; resuming {job}" in proc.stderr
    assert [p.name for p in runs.iterdir()] == [job.name]
    a = json.loads((straight_job / "results.json").read_text())
    b = json.loads((job / "results.json").read_text())
    assert b["resumed"] is True and a["test"] == b["test"] and a["steps"] == b["steps"]
    assert json.loads((job / "run.json").read_text())["wandb_id"] == run_id
