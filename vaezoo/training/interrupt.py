"""SIGTERM and SIGINT end a run cleanly: ``last.ckpt`` saved, W&B finished, resume command printed.

SIGTERM is what SLURM sends at a time limit and ``docker stop`` sends; SIGINT is Ctrl+C. During
``fit`` the signal only sets a flag (Lightning's own SIGTERM flag, which also stops its loops and
the other DDP processes); at the end of the current training batch :class:`GracefulStop` saves
``last.ckpt`` in the same state as the periodic saves (so the resume is exact) and raises
:class:`~vaezoo.errors.JobInterrupted`. Outside ``fit`` (data loading, testing, evaluation) the
handler raises it at once. The exit status is 128 + the signal: 143 for SIGTERM, 130 for SIGINT.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L

from vaezoo.errors import JobInterrupted

log = logging.getLogger("vaezoo")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class GracefulStop(L.Callback):
    """Turns SIGTERM / SIGINT into a saved ``last.ckpt`` and a :class:`JobInterrupted` error."""

    def __init__(self, job_dir: Path) -> None:
        self.job_dir = Path(job_dir)
        self.last = self.job_dir / "checkpoints" / "last.ckpt"
        self.signum: int | None = None
        self.saved_step: int | None = None
        self._fitting: L.Trainer | None = None

    # --- signal handling --------------------------------------------------------------------------
    @contextmanager
    def handling_signals(self) -> Iterator[GracefulStop]:
        """Install the handlers for the duration of the job (main thread only, as Python requires)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        for s in STOP_SIGNALS:
            signal.signal(s, self._on_signal)
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
            log.warning("received %s: stopping after the current batch", signal.Signals(signum).name)
        if self._fitting is not None:
            # Lightning's flag: its loops stop too (and under DDP the other processes are told).
            self._fitting._signal_connector.received_sigterm = True
            return
        raise self.error()

    def error(self) -> JobInterrupted:
        signum = self.signum or signal.SIGTERM
        name = signal.Signals(signum).name
        if self.saved_step is not None:
            saved = f"saved {self.last} at step {self.saved_step}"
        elif self.last.is_file():
            saved = f"{self.last} is the last save"
        else:
            return JobInterrupted(signum, f"interrupted by {name} before any checkpoint; start the job again")
        return JobInterrupted(
            signum, f"interrupted by {name}; {saved}; resume with: python -m vaezoo resume={self.job_dir}"
        )

    # --- Lightning hooks ----------------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fitting = trainer
        if self.signum is not None:  # arrived while setting up
            trainer._signal_connector.received_sigterm = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fitting = None

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        # Same place as ModelCheckpoint's every-n-steps save, so a resume from here is exact.
        if self.signum is not None and self._fitting is not None:
            self._save(trainer)
            self._fitting = None
            raise self.error()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        self._fitting = None
        if isinstance(exception, SIGTERMException) and self.saved_step is None and trainer.global_step > 0:
            self._save(trainer)  # stopped by Lightning outside a training batch (e.g. in validation)

    def _save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.last)
        self.saved_step = trainer.global_step
