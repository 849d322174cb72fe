"""Checkpoints that survive a kill: atomic writes, and the random state needed for an exact resume."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from lightning.pytorch.plugins.io import TorchCheckpointIO

from vaezoo.errors import write_failure


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file in the same folder, then renames it into place.

    ``os.replace`` is atomic on POSIX file systems, so a process killed during a save leaves the
    previous ``last.ckpt`` intact (plus, at worst, a stray ``.*.tmp`` file) and never a truncated one.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        target = Path(path)
        resume = f"resume with python -m vaezoo resume={target.parent.parent}"
        tmp: str | None = None
        writer: _AllOrError | None = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb", buffering=0) as f:
                writer = _AllOrError(f)
                torch.save(checkpoint, writer)
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except (OSError, RuntimeError) as err:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            # torch.save reports a failed write as RuntimeError ("enforce fail at inline_container.cc");
            # the writer kept the OSError behind it.
            cause = err if isinstance(err, OSError) else (writer.error if writer else None)
            failure = write_failure(cause, target, resume) if cause is not None else None
            if failure is None:
                raise
            intact = f"the previous {target.name} is intact" if target.exists() else "nothing saved before"
            raise type(failure)(f"{failure} ({intact}; saves are atomic)") from None
        except BaseException:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            raise


class _AllOrError:
    """A file-like object for ``torch.save`` that writes every byte or raises, and keeps the error.

    A buffered file on a full disk (or over ``ulimit -f``) can report a short write, which torch turns
    into an opaque RuntimeError; this keeps the ``OSError`` (ENOSPC, EFBIG, EROFS) that says why.
    """

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        try:
            while view:
                written = self.raw.write(view)
                if not written:
                    raise OSError(errno.ENOSPC, "No space left on device")
                view = view[written:]
        except OSError as err:
            self.error = err
            raise
        return len(data) if isinstance(data, bytes) else memoryview(data).nbytes

    def flush(self) -> None:
        self.raw.flush()


def remove_partial_saves(dirpath: str | os.PathLike) -> list[Path]:
    """Delete temporary files left by saves that were killed midway; returns what was removed."""
    stale = sorted(Path(dirpath).glob(".*.ckpt.*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


class RandomState(L.Callback):
    """Saves the torch (CPU and CUDA), NumPy and Python random states in every checkpoint, per process.

    Restoring them on resume makes the noise after the resume point (reparameterisation samples,
    dynamic binarization) the same as in an uninterrupted run; the data order itself is a function of
    (seed, epoch) and the loader's position (see ``vaezoo.data.datamodule.IndexBatches``).
    """

    @property
    def state_key(self) -> str:
        return "RandomState"

    def state_dict(self) -> dict[str, Any]:
        states = _collect_rng_states(include_cuda=torch.cuda.is_available())
        # NumPy's state holds an ndarray, which only a full (code-running) unpickle restores; stored
        # as a tensor and plain numbers, every checkpoint loads with torch.load(weights_only=True).
        name, keys, pos, has_gauss, cached = states["numpy"]
        keys = torch.from_numpy(keys.astype(np.int64))
        states["numpy"] = [name, keys, int(pos), int(has_gauss), float(cached)]
        return states

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        if "torch.cuda" in state_dict and not torch.cuda.is_available():
            del state_dict["torch.cuda"]
        numpy_state = state_dict.get("numpy")
        if isinstance(numpy_state, list):
            name, keys, pos, has_gauss, cached = numpy_state
            state_dict["numpy"] = (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached)
        _set_rng_states(state_dict)
