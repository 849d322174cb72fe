"""Real SIGINT and SIGTERM sent to ``python -m vaezoo.evaluate``, ``vaezoo.report`` and ``vaezoo.prior`` while
they work: exit 130 / 143, a last line that says what stopped and what to do, no traceback, and the
job folder's results.json and pictures as they were (files are only ever replaced whole).

Also the one-class image folder of issue 19: it trains (model=vanilla), writes results.json, and the
picture that needs two classes is skipped with its reason instead of crashing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.bad_input_case import FAST
from tests.conftest import REPO, run_cli


def catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has installed a handler for ``signum`` (its SigCgt mask in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def start(module: str, args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0", "WANDB_SILENT": "true"}
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(ready, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the stage never got ready for the signal"
        time.sleep(0.05)


def files_hash(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "evaluation" not in p.parts  # Hydra's log of this very evaluation
    }


def last_line(stderr: str) -> str:
    return [line for line in stderr.splitlines() if line.strip()][-1]


@pytest.fixture(scope="module")
def finished_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("finished")
    job = root / "job"
    proc = run_cli([*FAST, f"hydra.run.dir={job}"], cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return job


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_evaluate_stops_on_a_signal_and_leaves_the_job_as_it_was(finished_job, tmp_path, signum, status):
    job = tmp_path / "job"
    shutil.copytree(finished_job, job)
    before = files_hash(job)
    proc = start("vaezoo.evaluate", [f"run={job}", "wandb=false"], tmp_path)
    # Sent once the evaluation itself runs (Hydra has started its log), not while Python starts.
    wait_for(lambda: catches(proc.pid, signal.SIGTERM) and (job / "evaluation").is_dir(), proc)
    time.sleep(1.0)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == status, stderr[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    line = last_line(stderr)
    assert line.startswith("vaezoo.stages.evaluate: error: interrupted by " + signal.Signals(signum).name)
    assert "run it again" in line
    after = files_hash(job)
    assert {k: after.get(k) for k in before} == before  # results.json and every earlier file as they were
    assert not list(job.rglob(".*.tmp"))
    from PIL import Image

    for name in set(after) - set(before):  # pictures finished before the signal: whole PNGs
        assert name.startswith("images/") and name.endswith(".png"), name
        Image.open(job / name).verify()


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_report_stops_on_a_signal_without_a_half_written_page(finished_job, tmp_path, signum, status):
    job = tmp_path / "job"
    shutil.copytree(finished_job, job)
    proc = start("vaezoo.report", [str(job)], tmp_path)
    wait_for(lambda: catches(proc.pid, signal.SIGTERM), proc)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == status, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    line = last_line(stderr)
    assert line.startswith("vaezoo.report: error: interrupted by " + signal.Signals(signum).name), line
    assert not (job / "report.html").exists() and not list(job.rglob(".*.tmp"))


def test_a_one_class_folder_trains_and_skips_the_picture_that_needs_two(tmp_path):
    from PIL import Image

    folder = tmp_path / "one_class" / "cat"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / f"{i}.png")
    on_cpu = [a for a in FAST if not a.startswith(("dataset=", "pictures."))]
    job = tmp_path / "job"
    args = ["dataset=image_folder", f"dataset.path={folder.parent}", *on_cpu, f"hydra.run.dir={job}"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((job / "results.json").read_text())["test"]["n_examples"] == 2
    log = (job / "vaezoo.log").read_text()
    assert "picture interpolations skipped: every test example is of one class" in log
    assert (job / "images" / "traversals.png").is_file()  # the pictures that apply are drawn


def test_prior_stops_on_sigterm_while_training_with_nothing_half_written(tmp_path):
    job = tmp_path / "vqvae"
    proc = run_cli(["model=vqvae", *FAST, f"hydra.run.dir={job}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = files_hash(job)
    args = [f"run={job}", "logger=csv", "hardware=cpu", "trainer.max_epochs=50"]
    prior = start("vaezoo.prior", args, tmp_path)
    wait_for(lambda: catches(prior.pid, signal.SIGTERM) and (job / "prior").is_dir(), prior)
    time.sleep(2.0)
    prior.send_signal(signal.SIGTERM)
    _, stderr = prior.communicate(timeout=120)
    assert prior.returncode == 143, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert last_line(stderr).startswith("vaezoo.stages.prior: error: interrupted by SIGTERM"), stderr[-3000:]
    assert not (job / "prior" / "results.json").exists() and not list(job.rglob(".*.tmp"))
    after = files_hash(job)
    assert {k: after[k] for k in before} == before  # the VQ-VAE job itself untouched
