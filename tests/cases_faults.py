"""The catalogue's real OS faults and stages that must refuse before they write (issue 19, items 5 and 6).

Faults are made for real, not patched in: a small tmpfs as the runs folder (a full disk while
checkpointing), ``RLIMIT_FSIZE`` (``ulimit -f``, see tests/with_file_limit.py), read-only bind mounts
of the runs, job, data and W&B folders. Mounting needs root and the mount command; where the machine
cannot mount, :func:`cannot_mount` gives the reason and the case is skipped. Every mount a case makes
is unmounted by its ``cleanup``, whether the case passed or not.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.bad_input_case import FAST, ON_CPU, Case, failed_json_names
from tests.conftest import shared_datasets

# --- real faults: mounts ---------------------------------------------------------------------------------
MOUNTS_FILE = "mounted-by-case.txt"  # in the case's temporary folder: what cleanup unmounts


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@functools.cache
def cannot_mount() -> str | None:
    """Why this machine cannot make the mounts these cases need, or None (tried once, for real)."""
    if os.geteuid() != 0:
        return "needs root to mount a tmpfs or a read-only bind mount (run the tests as root)"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "no mount/umount commands on this machine"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", tmp)
        except subprocess.CalledProcessError as err:
            return f"cannot mount here ({err.stderr.strip() or err}); a container without CAP_SYS_ADMIN?"
        subprocess.run(["umount", tmp], check=True)
    return None


def _remember(tmp_path: Path, mount_point: Path) -> None:
    with open(tmp_path / MOUNTS_FILE, "a") as f:
        f.write(f"{mount_point}\n")


def unmount_all(tmp_path: Path) -> None:
    """Unmount what the case mounted, last first (a case's cleanup)."""
    record = tmp_path / MOUNTS_FILE
    if not record.is_file():
        return
    for point in reversed(record.read_text().split()):
        subprocess.run(["umount", point], check=False, capture_output=True)
    record.unlink()


def small_tmpfs(size: str, place: str = "runs") -> Callable[[Path, Path], None]:
    """A tmpfs of ``size`` mounted on the case's runs folder: a disk that fills during the run."""

    def prepare(job: Path, data: Path) -> None:
        point = job.parent / place
        point.mkdir(exist_ok=True)
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point))
        _remember(job.parent, point)

    return prepare


def read_only(folder: Callable[[Path, Path], Path], then: Callable[[Path, Path], None] | None = None):
    """Make ``then``'s files first (if given), then bind-mount ``folder(job, data)`` read-only on itself."""

    def prepare(job: Path, data: Path) -> None:
        if then is not None:
            then(job, data)
        point = folder(job, data)
        point.mkdir(parents=True, exist_ok=True)
        _mount("--bind", str(point), str(point))
        _remember(job.parent, point)
        _mount("-o", "remount,bind,ro", str(point))
        probe = point / ".write-probe"
        try:
            probe.write_text("x")
        except OSError:
            return
        probe.unlink()
        raise AssertionError(f"{point} is still writable after the read-only bind mount")

    return prepare


def runs_folder(job: Path, data: Path) -> Path:
    return job.parent / "runs"


def the_job(job: Path, data: Path) -> Path:
    return job


def the_data(job: Path, data: Path) -> Path:
    return data


def wandb_folder(job: Path, data: Path) -> Path:
    return job.parent / "runs" / "job" / "wandb"


def images_folder(job: Path, data: Path) -> Path:
    return job.parent / "runs" / "job" / "images"


def mnist_archives(job: Path, data: Path) -> None:
    shared = shared_datasets()
    if shared is None:
        pytest.skip("shared datasets not found (set VAEZOO_SHARED_DATASETS)")
    raw = data / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in (shared / "MNIST" / "raw").glob("*.gz"):
        shutil.copy(gz, raw / gz.name)


# --- what the faults must leave behind ---------------------------------------------------------------------
def failed_and_intact(*words: str, saved_before: bool) -> Callable[[Path], None]:
    """failed.json names the failure; no results.json; no half-written save; last.ckpt (if any) loads."""

    def check(runs: Path) -> None:
        import torch

        (failed,) = list(runs.rglob("failed.json"))
        error = json.loads(failed.read_text())["error"]
        assert all(w in error for w in words), error
        assert not list(runs.rglob("results.json"))
        assert not list(runs.rglob(".*.tmp")), "a partial checkpoint save was left behind"
        lasts = list(runs.rglob("last.ckpt"))
        assert bool(lasts) == saved_before, lasts
        for last in lasts:  # the last good save is whole: it loads and holds the weights
            assert "state_dict" in torch.load(last, weights_only=True, map_location="cpu")

    return check


def nothing_written(runs: Path) -> None:
    """Nothing but what Hydra writes as a job starts (.hydra/, the log): refused before training."""
    written = [p.name for p in runs.rglob("*") if p.is_file() and p.parent.name != ".hydra"]
    assert set(written) <= {"vaezoo.log"}, written


# --- data too small or of one class, broken results.json ---------------------------------------------------
def one_class_folder(job: Path, data: Path) -> None:
    from PIL import Image

    folder = data / "one_class" / "cat"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / f"{i}.png")


def three_rows(job: Path, data: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(data / "three.npz", images=rng.integers(0, 2, (3, 8, 8)).astype(np.uint8))


def broken_results(text: str) -> Callable[[Path, Path], None]:
    def prepare(job: Path, data: Path) -> None:
        (job / "results.json").write_text(text)

    return prepare


MOUNTED = {"cannot_run": cannot_mount, "cleanup": unmount_all}

CASES = [
    # item 5: real faults while writing
    Case(
        "disk-full",  # a tmpfs too small for a second checkpoint next to the first
        [*FAST, "checkpoint.every_n_train_steps=5"],
        ("no space left", "free space in", "resume=", "the previous last.ckpt is intact"),
        status=1,
        prepare=small_tmpfs("1500k"),
        check=failed_and_intact("DiskFull", "last.ckpt", saved_before=True),
        **MOUNTED,
    ),
    Case(
        "file-size-limit",  # ulimit -f: the first checkpoint is larger than the limit
        [*FAST, "checkpoint.every_n_train_steps=5"],
        ("file-size limit", "ulimit -f unlimited", "nothing saved before"),
        status=1,
        module="tests.with_file_limit",
        env={"VAEZOO_TEST_FILE_LIMIT": str(400_000)},
        check=failed_and_intact("DiskFull", "last.ckpt", saved_before=False),
    ),
    Case(
        "read-only-runs-train",
        FAST,
        ("cannot write the runs folder", "read-only", "paths.runs=<folder>"),
        prepare=read_only(runs_folder),
        check=nothing_written,
        **MOUNTED,
    ),
    Case(
        "read-only-job-resume",
        ["resume={copy}"],
        ("cannot write the job folder to resume", "read-only", "cp -r"),
        prepare=read_only(the_job),
        **MOUNTED,
    ),
    Case(
        "read-only-job-evaluate",
        ["run={copy}"],
        ("cannot write in", "read-only", "cp -r"),
        module="vaezoo.evaluate",
        prepare=read_only(the_job),
        **MOUNTED,
    ),
    Case(
        "read-only-job-report",
        ["{copy}"],
        ("cannot write the report's folder", "read-only", "--out <file>"),
        module="vaezoo.report",
        prepare=read_only(the_job),
        **MOUNTED,
    ),
    Case(
        "wandb-unwritable",  # the job folder is writable, its wandb/ folder a read-only mount
        [*FAST[:-2], "logger=wandb", "trainer.max_epochs=1", "hydra.run.dir={runs}/job"],
        ("cannot write W&B files", "logger=csv"),
        prepare=read_only(wandb_folder),
        **MOUNTED,
    ),
    Case(
        "read-only-images-train",  # the job folder is writable, its images/ folder a read-only mount
        [*FAST, "hydra.run.dir={runs}/job"],
        ("cannot write", "images", "read-only", "resume="),
        status=1,
        prepare=read_only(images_folder),
        check=failed_json_names("NotWritable", "images"),
        **MOUNTED,
    ),
    Case(
        "mnist-read-only",  # torchvision unpacks next to the archives: a read-only data folder
        ["dataset=mnist", "dataset.download=false", *ON_CPU],
        ("read-only", "writable"),
        prepare=read_only(the_data, then=mnist_archives),
        **MOUNTED,
    ),
    # item 6: refused before training or before the metric runs
    Case(
        "one-class-cvae",
        ["model=cvae", "dataset=image_folder", "dataset.path={data}/one_class", *ON_CPU],
        ("model=cvae conditions on the class label", "one class", "model=vanilla"),
        prepare=one_class_folder,
        check=nothing_written,
    ),
    Case(
        "three-row-arrays",
        ["dataset=arrays", "dataset.path={data}/three.npz", *ON_CPU],
        ("1 test example", "at least 2", "dataset.test_size"),
        prepare=three_rows,
        check=nothing_written,
    ),
    Case(
        "diverged-hvae-nulls",  # every bad update skipped, so training ends; the test loss is NaN
        [*FAST, "model=hvae", "optimizer.lr=1e6", "pictures.enabled=true"],
        ("training diverged", "test loss", "lower optimizer.lr"),
        status=1,
        check=failed_json_names("Diverged", "test loss"),
    ),
    Case(
        "evaluate-iw-bound-k-zero",
        ["run={copy}", "+eval.settings.iw_bound.k=0"],
        ("eval.settings.iw_bound.k=0", "integer >= 1", "iw_bound.k=5000"),
        module="vaezoo.evaluate",
    ),
    Case(
        "evaluate-run-is-results-file",
        ["run={copy}/results.json"],
        ("results.json is a file", "give the job folder that holds it: run="),
        module="vaezoo.evaluate",
    ),
    Case(
        "reproduce-damaged-results",
        ["reproduce={copy}", *FAST],
        ("results.json is damaged", "checkpoints is 3", "rerun the job"),
        prepare=broken_results('{"schema_version": 1, "checkpoints": 3, "test": {}}'),
        check=nothing_written,
    ),
    Case(
        "reproduce-truncated-results",
        ["reproduce={copy}", *FAST],
        ("results.json is not valid JSON", "rerun the job"),
        prepare=broken_results('{"schema_version": 1, "test": {"elbo_n'),
        check=nothing_written,
    ),
]
