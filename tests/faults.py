"""Fault injection for tests, added to a run with ``+callbacks.kill._target_=tests.faults.KillAtStep``."""

from __future__ import annotations

import os
import signal

import lightning as L


class KillAtStep(L.Callback):
    """SIGKILLs its own process once ``step`` optimiser steps are done: no cleanup, like a node failure."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class SignalAtStep(L.Callback):
    """Sends a real signal (default SIGTERM) to its own process once ``step`` optimiser steps are done."""

    def __init__(self, step: int, signum: int = signal.SIGTERM) -> None:
        self.step, self.signum, self.sent = step, signum, False

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step >= self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)


class SlurmRequeueAtStep(L.Callback):
    """What SLURM does at a time limit with ``--signal=USR1@...`` and a requeue: SIGUSR1, then SIGTERM.

    Only in the first run of the job (``SLURM_RESTART_COUNT`` unset), so the requeued run finishes.
    """

    def __init__(self, step: int) -> None:
        self.step, self.sent = step, False

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step >= self.step and not self.sent and not os.environ.get("SLURM_RESTART_COUNT"):
            self.sent = True
            os.kill(os.getpid(), signal.SIGUSR1)  # Lightning: save hpc_ckpt_1.ckpt, scontrol requeue
            os.kill(os.getpid(), signal.SIGTERM)
