"""A catalogue of bad inputs and faults: each ends in one line naming the problem and a fix.

Every case runs the real command line and asserts its exit status, that the last line of stderr
holds the expected words (problem and fix), that no Python traceback was printed, and that no
existing job folder changed (a hash of every file in it, before and after). Most cases are refused
before Hydra starts a job, without importing torch, so the whole catalogue takes well under
three minutes on two cores.
"""

from __future__ import annotations

import gzip
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.bad_input_case import (
    FAST,
    MARKER,
    NO_HARDWARE,
    ON_CPU,
    UNREACHABLE_WANDB,
    Case,
    failed_json_names,
    folder_hash,
    more_cases,
)
from tests.conftest import run_cli


# --- preparing broken inputs ---------------------------------------------------------------------------
def truncate_last_ckpt(job: Path, data: Path) -> None:
    last = job / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])


def garbage_last_ckpt(job: Path, data: Path) -> None:
    (job / "checkpoints" / "last.ckpt").write_bytes(b"\x00not a checkpoint at all" * 10)


class WritesMarker:
    """Unpickling this runs ``open(path, 'w')``: what a malicious checkpoint would do."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('pwned')",))


def malicious_last_ckpt(job: Path, data: Path) -> None:
    import torch

    path = job / "checkpoints" / "last.ckpt"
    state = torch.load(path, weights_only=True)
    state["callbacks"]["evil"] = WritesMarker(str(job / MARKER))
    torch.save(state, path)


def foreign_target_in_overrides(job: Path, data: Path) -> None:
    overrides = job / ".hydra" / "overrides.yaml"
    overrides.write_text(overrides.read_text() + "- +callbacks.evil._target_=os.system\n")


def no_checkpoints(job: Path, data: Path) -> None:
    shutil.rmtree(job / "checkpoints")


def npz(**arrays: np.ndarray) -> Callable[[Path, Path], None]:
    def write(job: Path, data: Path) -> None:
        folder = data / "binarized_mnist"
        folder.mkdir(parents=True)
        np.savez(folder / "binarized_mnist.npz", **arrays)

    return write


def truncated_npz(job: Path, data: Path) -> None:
    npz(
        train=np.zeros((10, 784), np.uint8),
        valid=np.zeros((10, 784), np.uint8),
        test=np.zeros((10, 784), np.uint8),
    )(job, data)
    path = data / "binarized_mnist" / "binarized_mnist.npz"
    path.write_bytes(path.read_bytes()[:200])


def split(n: int, dtype: type = np.uint8, high: int = 2, shape: tuple[int, ...] = (784,)) -> np.ndarray:
    return np.random.default_rng(0).integers(0, high, size=(n, *shape)).astype(dtype)


def truncated_unpacked_mnist(job: Path, data: Path) -> None:
    raw = data / "MNIST" / "raw"
    raw.mkdir(parents=True)
    header = struct.pack(">IIII", 0x00000803, 60000, 28, 28)
    (raw / "train-images-idx3-ubyte").write_bytes(header + b"\x00" * 5000)


def truncated_mnist_archive(job: Path, data: Path) -> None:
    raw = data / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00" * 100)[:30])


# --- the catalogue -----------------------------------------------------------------------------------
CASES = [
    # keys and types, refused before anything runs
    Case(
        "misspelled-key",
        ["trainer.max_epoch=3"],
        ("unknown key trainer.max_epoch", "did you mean trainer.max_epochs"),
    ),
    Case(
        "misspelled-model-key",
        ["model.latent_dimm=3"],
        ("unknown key model.latent_dimm", "model.latent_dim?"),
    ),
    Case(
        "misspelled-added-key",
        ["+model.latent_dimm=3"],
        ("unknown key model.latent_dimm", "model.latent_dim?"),
    ),
    Case(
        "misspelled-trainer-arg",
        ["+trainer.max_epoch=3"],
        ("unknown key trainer.max_epoch", "trainer.max_epochs?"),
    ),
    Case(
        "trainer-arg-without-plus",
        ["trainer.limit_train_batches=2"],
        ("not set", "+trainer.limit_train_batches"),
    ),
    Case(
        "unknown-dataset-key",
        ["dataset=digits", "dataset.batchsize=8"],
        ("dataset.batchsize", "dataset.batch_size"),
    ),
    Case("seed-not-int", ["seed=abc"], ("seed=abc", "must be an integer")),
    Case("beta-not-number", ["beta=abc"], ("beta=abc", "must be a number")),
    Case("epochs-not-int", ["trainer.max_epochs=abc"], ("trainer.max_epochs=abc", "integer")),
    Case("lr-zero", ["optimizer.lr=0"], ("optimizer.lr=0", "> 0")),
    Case("lr-negative", ["optimizer.lr=-1"], ("optimizer.lr=-1", "> 0")),
    Case("latent-dim-zero", ["model.latent_dim=0"], ("model.latent_dim=0", ">= 1")),
    Case("max-epochs-zero", ["trainer.max_epochs=0"], ("trainer.max_epochs=0", ">= 1")),
    Case("max-epochs-negative", ["trainer.max_epochs=-1"], ("trainer.max_epochs=-1", ">= 1")),
    Case("iw-k-zero", ["eval.iw_k=0"], ("eval.iw_k=0", ">= 1")),
    Case("n-images-zero", ["images.n_images=0"], ("images.n_images=0", ">= 1")),
    Case("batch-size-zero", ["dataset.batch_size=0"], ("dataset.batch_size=0", ">= 1")),
    Case("objective-k-zero", ["objective.k=0"], ("objective.k=0", ">= 1")),
    Case("betas-out-of-range", ["optimizer.betas=[0.9,1.5]"], ("optimizer.betas", "[0, 1)")),
    Case("clip-norm-negative", ["optimizer.clip_norm=-1"], ("optimizer.clip_norm=-1", "> 0 or null")),
    Case(
        "checkpoint-every-zero",
        ["checkpoint.every_n_train_steps=0"],
        ("every_n_train_steps=0", ">= 1 or null"),
    ),
    Case("logger-mode", ["logger.mode=sometimes"], ("logger.mode=sometimes", "online, offline or disabled")),
    Case("wandb-mode-env", [], ("logger.mode=bogus", "WANDB_MODE"), env={"WANDB_MODE": "bogus"}),
    Case("unknown-model", ["model=vanila"], ("unknown model 'vanila'", "vanilla")),
    Case("unknown-dataset", ["dataset=mnistt"], ("unknown dataset 'mnistt'", "mnist")),
    Case(
        "bernoulli-on-grey",
        ["dataset=digits", "dataset.binarize=none"],
        ("binarize=none", "binarize=dynamic"),
    ),
    Case(
        "gradient-clip-val", ["+trainer.gradient_clip_val=1"], ("gradient_clip_val", "optimizer.clip_norm=1")
    ),
    Case(
        "accumulate-grad", ["+trainer.accumulate_grad_batches=2"], ("accumulate_grad_batches", "batch_size")
    ),
    Case("sweep-value-checked", ["beta=1,abc", "-m"], ("beta=abc", "must be a number")),
    Case("flag-after-overrides", ["seed=1", "--cfg", "job", "eval.iw_k=0"], ("eval.iw_k=0", ">= 1")),
    Case("cfg-with-multirun", ["--cfg", "job", "beta=1,2", "-m"], ("--cfg", "drop -m")),
    Case("bad-callback", ["+callbacks.x._target_=no.such.Thing", *FAST], ("callbacks.x", "~callbacks.x")),
    Case("gpu-without-cuda", ["hardware=gpu", *NO_HARDWARE], ("no CUDA device", "hardware=cpu")),
    # resume: refused before the job folder is touched
    Case("resume-missing", ["resume=/nonexistent/job"], ("not found", "point resume at a job folder")),
    Case("resume-multirun", ["resume={job}", "-m"], ("resume=", "drop -m")),
    Case(
        "resume-latent-dim",
        ["resume={job}", "model.latent_dim=5"],
        ("cannot change model.latent_dim", "20 -> 5"),
    ),
    Case(
        "resume-dataset", ["resume={job}", "dataset=mnist"], ("cannot change dataset.name", "start a new run")
    ),
    Case(
        "resume-likelihood",
        ["resume={job}", "likelihood=gaussian"],
        ("cannot change likelihood", "drop that"),
    ),
    Case(
        "resume-no-checkpoint",
        ["resume={copy}"],
        ("no checkpoints/last.ckpt", "saved no checkpoint"),
        prepare=no_checkpoints,
    ),
    Case(
        "resume-truncated-ckpt",
        ["resume={copy}"],
        ("corrupt or truncated", "best checkpoint"),
        prepare=truncate_last_ckpt,
    ),
    Case(
        "resume-garbage-ckpt", ["resume={copy}"], ("last.ckpt is corrupt", "mv "), prepare=garbage_last_ckpt
    ),
    Case(
        "resume-malicious-ckpt",
        ["resume={copy}"],
        ("refusing to load", "it calls exec"),
        prepare=malicious_last_ckpt,
    ),
    Case(
        "resume-foreign-target",
        ["resume={copy}"],
        ("refusing", "callbacks.evil._target_=os.system"),
        prepare=foreign_target_in_overrides,
    ),
    Case(
        "reproduce-foreign-target",
        ["reproduce={copy}"],
        ("refusing", "callbacks.evil._target_=os.system"),
        prepare=foreign_target_in_overrides,
    ),
    # data: the real cause and the file to fix
    Case(
        "data-missing",
        ["dataset=mnist", "dataset.download=false", *ON_CPU],
        ("mnist not found", "dataset.root"),
    ),
    Case(
        "npz-0-255",
        ["dataset=binarized_mnist", "dataset.download=false", *ON_CPU],
        ("values 0..255", "threshold"),
        prepare=npz(train=split(20, high=256), valid=split(20), test=split(20)),
    ),
    Case(
        "npz-floats",
        ["dataset=binarized_mnist", "dataset.download=false", *ON_CPU],
        ("float32", "astype('uint8')"),
        prepare=npz(train=split(20, np.float32), valid=split(20), test=split(20)),
    ),
    Case(
        "npz-shape",
        ["dataset=binarized_mnist", "dataset.download=false", *ON_CPU],
        ("shape (20, 100)", "[N, 784]"),
        prepare=npz(train=split(20, shape=(100,)), valid=split(20), test=split(20)),
    ),
    Case(
        "npz-missing-split",
        ["dataset=binarized_mnist", "dataset.download=false", *ON_CPU],
        ("no valid array", "delete"),
        prepare=npz(train=split(20), test=split(20)),
    ),
    Case(
        "npz-truncated",
        ["dataset=binarized_mnist", "dataset.download=false", *ON_CPU],
        ("truncated or corrupt", "delete"),
        prepare=truncated_npz,
    ),
    Case(
        "mnist-truncated-unpacked",
        ["dataset=mnist", "dataset.download=false", *ON_CPU],
        ("train-images-idx3-ubyte is truncated", "delete it"),
        prepare=truncated_unpacked_mnist,
    ),
    Case(
        "mnist-truncated-archive",
        ["dataset=mnist", "dataset.download=false", *ON_CPU],
        ("train-images-idx3-ubyte.gz is truncated", "download it again"),
        prepare=truncated_mnist_archive,
    ),
    Case(
        "wandb-online-unreachable-fail",
        [
            *FAST[:-2],
            "logger.mode=online",
            "logger.if_unreachable=fail",
            "logger.init_timeout=3",
            "trainer.max_epochs=1",
        ],
        ("W&B could not start an online run", "logger.mode=offline"),
        env=UNREACHABLE_WANDB,
    ),
    # failures during training: exit 1, failed.json, no results.json
    Case(
        "diverged-lr",
        [*FAST, "optimizer.lr=1e6"],
        ("training diverged", "lower optimizer.lr"),
        status=1,
        check=failed_json_names("Diverged", "step"),
    ),
    Case(
        "diverged-hvae-skips",
        [*FAST, "model=hvae", "optimizer.lr=1e6", "optimizer.max_consecutive_skips=3"],
        ("training diverged", "updates in a row were skipped"),
        status=1,
        check=failed_json_names("skipped"),
    ),
    *more_cases(),  # tests/cases_*.py: the catalogue's parts kept beside the code they try
]


@pytest.fixture(scope="module")
def finished_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished tiny job (digits, one epoch), with last.ckpt and a best checkpoint."""
    root = tmp_path_factory.mktemp("finished")
    job = root / "job"
    proc = run_cli([*FAST, "checkpoint.every_n_train_steps=5", f"hydra.run.dir={job}"], cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return job


def test_the_catalogue_is_large_and_unique():
    assert len(CASES) >= 115  # issue 19 grew it from 58; a lost part (tests/cases_*.py) fails here
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, finished_job: Path, tmp_path: Path) -> None:
    if case.cannot_run and (reason := case.cannot_run()):
        pytest.skip(reason)
    try:
        run_case(case, finished_job, tmp_path)
    finally:
        if case.cleanup:
            case.cleanup(tmp_path)


def run_case(case: Case, finished_job: Path, tmp_path: Path) -> None:
    copy, data, runs = tmp_path / "copy", tmp_path / "data", tmp_path / "runs"
    shutil.copytree(finished_job, copy)
    data.mkdir()
    if case.prepare:
        case.prepare(copy, data)
    places = {"job": str(finished_job), "copy": str(copy), "data": str(data), "runs": str(runs)}
    args = [a.format(**places) for a in case.args]
    env = {k: v.format(**places) for k, v in case.env.items()}
    before = {finished_job: folder_hash(finished_job), copy: folder_hash(copy)}
    # Where to write and read data: keys of the training command's config (python -m vaezoo and the
    # tests' wrappers around it); the other entry points (evaluate, report) are given their folders.
    trains = case.module == "vaezoo" or case.module.startswith("tests.")
    places_args = [f"paths.runs={runs}", f"paths.data={data}"] if trains else []

    proc = run_cli([*args, *places_args], cwd=tmp_path, module=case.module, **env)

    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == case.status, proc.stderr[-3000:]
    assert lines, "nothing on stderr"
    last = lines[-1]
    assert last.startswith("vaezoo"), proc.stderr[-3000:]
    assert all(word in last for word in case.expect), last
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert {p: folder_hash(p) for p in before} == before, "an existing job folder changed"
    assert not (copy / MARKER).exists(), "a checkpoint ran code while loading"
    if case.check:
        case.check(runs)


def test_load_run_and_prior_refuse_a_foreign_target(finished_job: Path, tmp_path: Path) -> None:
    from vaezoo.errors import UnsafeInputError
    from vaezoo.jobs.load import load_run

    job = tmp_path / "job"
    shutil.copytree(finished_job, job)
    config = job / "config.yaml"
    config.write_text(
        config.read_text().replace("_target_: vaezoo.likelihoods.Bernoulli", "_target_: os.system")
    )
    before = folder_hash(job)
    with pytest.raises(UnsafeInputError, match=r"likelihood._target_=os.system"):
        load_run(job)
    proc = run_cli([f"run={job}"], cwd=tmp_path, module="vaezoo.stages.prior")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("vaezoo.stages.prior: error: refusing")
    assert folder_hash(job) == before


def test_load_run_refuses_a_checkpoint_that_runs_code(finished_job: Path, tmp_path: Path) -> None:
    from vaezoo.errors import UnsafeInputError
    from vaezoo.jobs.load import load_run

    job = tmp_path / "job"
    shutil.copytree(finished_job, job)
    for ckpt in (job / "checkpoints").glob("*.ckpt"):
        ckpt.unlink()
    (job / "checkpoints" / "last.ckpt").write_bytes((finished_job / "checkpoints" / "last.ckpt").read_bytes())
    malicious_last_ckpt(job, tmp_path)
    with pytest.raises(UnsafeInputError, match="it calls exec"):
        load_run(job, checkpoint="last")
    assert not (job / MARKER).exists()
    import torch

    torch.load(job / "checkpoints" / "last.ckpt", weights_only=False)  # the control: a full unpickle
    assert (job / MARKER).exists()  # really does run the code


RUN_DIR = """
from hydra import compose, initialize_config_dir
from vaezoo.paths import config_dir
with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
    cfg = compose("config", overrides=["paths.runs=/r"], return_hydra_config=True)
print(cfg.hydra.run.dir, cfg.hydra.sweep.dir)
"""


def test_two_launches_in_the_same_second_get_different_folders(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SLURM_JOB_ID", None)
    env.pop("SLURM_ARRAY_JOB_ID", None)
    procs = [
        subprocess.Popen([sys.executable, "-c", RUN_DIR], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    names = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        names += [Path(d).name for d in out.split()]
    run_a, sweep_a, run_b, sweep_b = (name.rsplit("-", 1) for name in names)
    assert all(len(n[0]) == len("2026-01-01_00-00-00") for n in (run_a, sweep_a, run_b, sweep_b))
    assert run_a[1] != run_b[1] and sweep_a[1] != sweep_b[1]  # the suffixes differ, whatever the time
