"""Shared fixtures: config composition, the CLI in a subprocess, and copies of the shared datasets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from vaezoo.paths import config_dir

REPO = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Each of pytest-xdist's workers (one per core) computes on one thread, and so do the programs it
    # starts (they inherit OMP_NUM_THREADS): two workers on two cores, not four threads fighting.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# Small enough for a few seconds on 2 CPU cores.
TINY = [
    "dataset=digits",
    "hardware=cpu",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "eval.iw_k=8",
    "eval.iw_chunk=4",
    "images.n_images=16",
    "pictures.enabled=false",  # the latent-space pictures are tested in test_visualize/test_report_browser
]


def shared_datasets() -> Path | None:
    """The read-only shared dataset folder (../shared/datasets beside the checkout), if present."""
    env = os.environ.get("VAEZOO_SHARED_DATASETS")
    for candidate in [Path(env)] if env else [REPO.parent / "shared" / "datasets"]:
        if (candidate / "MNIST" / "raw").is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the shared MNIST (torchvision unpacks next to the .gz files)."""
    shared = shared_datasets()
    if shared is None:
        pytest.skip("shared datasets not found (set VAEZOO_SHARED_DATASETS)")
    root = tmp_path_factory.mktemp("data")
    shutil.copytree(shared / "MNIST", root / "MNIST")
    return root


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """Compose the app's config with overrides, as a job would see it (HydraConfig set, runs in tmp)."""

    def _compose(*overrides: str) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(
                "config", overrides=[f"paths.runs={tmp_path}/runs", *overrides], return_hydra_config=True
            )
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = str(tmp_path / "job")
            cfg.hydra.job.num = 0
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield _compose
    GlobalHydra.instance().clear()


def run_cli(
    args: list[str], cwd: Path, timeout: float = 600, module: str = "vaezoo", **env: str
) -> subprocess.CompletedProcess:
    """Run ``python -m MODULE ARGS`` in cwd with this checkout's code; returns the finished process."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0", "WANDB_SILENT": "true", **env}
    full_env.pop("VAEZOO_RUNS", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# The uninterrupted deterministic digits job that the kill and signal tests must end exactly like:
# digits has 22 steps per epoch, so 2 epochs are 44 steps; a checkpoint every 5 steps.
DETERMINISTIC = [*TINY, "seed=7", "trainer.deterministic=true", "checkpoint.every_n_train_steps=5"]


@pytest.fixture(scope="session")
def straight_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``DETERMINISTIC`` trained once per test run (read only): pytest-xdist's workers share it through a
    lock in their common temporary folder, so the first worker to ask trains it and the others wait."""
    import fcntl

    shared = tmp_path_factory.getbasetemp().parent  # the same folder for every worker of this run
    job = shared / "straight" / "job"
    with open(shared / "straight.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (job / "results.json").is_file():
            shutil.rmtree(job.parent, ignore_errors=True)
            job.parent.mkdir()
            proc = run_cli([*DETERMINISTIC, "logger=csv", f"hydra.run.dir={job}"], cwd=job.parent)
            assert proc.returncode == 0, proc.stderr[-3000:]
    return job
