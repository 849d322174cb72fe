"""SIGTERM and SIGINT in the stages that train no VAE (evaluate, prior, report): one line, exit 128 + signal.

Training has its own handling (:mod:`vaezoo.training.interrupt`: last.ckpt saved, resume printed). These
stages have nothing to resume: the handler raises :class:`~vaezoo.errors.StageInterrupted` at once, and
every file they write is renamed into place when complete (results.json, the report), so an interrupted
stage leaves the earlier files as they were. Kept free of heavy imports: the handlers are installed
before anything slow starts.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from vaezoo.errors import StageInterrupted

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
T = TypeVar("T")


@contextmanager
def stop_on_signals(what: str) -> Iterator[None]:
    """SIGTERM / SIGINT raise :class:`~vaezoo.errors.StageInterrupted` at once while inside."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        raise StageInterrupted(
            signum,
            f"interrupted by {name}; {what} stopped (its files are only replaced whole, never "
            "half-written): run it again",
        )

    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in STOP_SIGNALS:
        signal.signal(s, interrupt)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_stopping_on_signals(program: str, what: str, stage: Callable[[], T]) -> T:
    """``stage()`` with :func:`stop_on_signals`; an interruption ends in one line and exit 128 + signal."""
    with stop_on_signals(what):
        try:
            return stage()
        except StageInterrupted as stop:
            print(f"{program}: error: {stop.message}", file=sys.stderr, flush=True)
            raise SystemExit(stop.code) from None
