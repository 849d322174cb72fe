"""A plain training run's console says each thing once, without Lightning's adverts and internal noise."""

from __future__ import annotations

import warnings

from tests.conftest import TINY, run_cli
from vaezoo.training.console import LIGHTNING_WARNINGS, drop_lightning_warnings


def test_a_training_run_prints_lightning_lines_once_and_none_of_its_noise(tmp_path):
    # every_n_train_steps=5 reaches ModelCheckpoint's manual-optimisation warning (44 steps in 2 epochs);
    # 22 batches an epoch against log_every_n_steps=50 raises a real warning about the user's settings.
    args = [*TINY, "checkpoint.every_n_train_steps=5", "trainer.log_every_n_steps=50", "hydra.run.dir=job"]
    proc = run_cli(args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = proc.stdout + proc.stderr
    for line in ("GPU available: False, used: False", "`Trainer.fit` stopped: `max_epochs=2` reached."):
        assert console.count(line) == 1, (line, console[-4000:])
    noises = ("💡 Tip", "litlogger", "litmodels", "LeafSpec", "Using ModelCheckpoint", "def training_step")
    noises += ("exists and is not empty", "anonymous setting")  # CSV logger's folder, W&B's deprecation
    for noise in noises:
        assert noise not in console, (noise, console[-4000:])
    assert console.count("is smaller than the logging interval Trainer(log_every_n_steps=50)") == 1
    # Lightning's lines still reach the job's log file (through the root handlers, once).
    assert (tmp_path / "job" / "vaezoo.log").read_text().count("GPU available: False, used: False") == 1


def test_only_the_listed_warnings_are_dropped():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drop_lightning_warnings()
        for message in LIGHTNING_WARNINGS:
            warnings.warn(message, UserWarning, stacklevel=1)
        warnings.warn("`isinstance(x, LeafSpec)` is deprecated", FutureWarning, stacklevel=1)
        warnings.warn("Using ModelCheckpoint with a monitor that was never logged", UserWarning, stacklevel=1)
        folder = "Experiment logs directory /r/job/ exists and is not empty. Previous log files in this "
        warnings.warn(
            folder + "directory will be deleted when the new ones are saved!", UserWarning, stacklevel=1
        )
        warnings.warn("Experiment logs directory /r/job/ is missing", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == [
        "`isinstance(x, LeafSpec)` is deprecated",
        "Using ModelCheckpoint with a monitor that was never logged",
        "Experiment logs directory /r/job/ is missing",
    ]
