"""Reading pickled files from disk without running anything they carry.

A pickle can name any importable callable and have it called while it loads, so vaezoo never fully
unpickles a file: CIFAR-10's official python batches go through :class:`BatchUnpickler`, which
admits only the globals NumPy arrays need; torch files (checkpoints, priors, ``.pt`` arrays) load
with ``torch.load(weights_only=True)`` through :func:`load_torch_plain`, which turns torch's
refusal (whose text advises the unsafe ``weights_only=False``) into :class:`CarriesObjects`, so each
caller can say in its own words what to do instead.
"""

from __future__ import annotations

import pickle
import pickletools
import re
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

# What every refusal says, word for word: tests and docs look for it.
CARRIES_CODE = "this file carries code or objects vaezoo does not load"

# numpy pickles an array as _reconstruct(ndarray, ...) + a dtype; the module of _reconstruct is
# numpy.core.multiarray in files written by NumPy 1 (CIFAR-10's official batches) and
# numpy._core.multiarray in files written by NumPy 2. Both names map to the function this NumPy has.
_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]
ARRAY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


# What torch.load raises on a truncated, overwritten or foreign file (it varies with the damage).
UNREADABLE_TORCH_ERRORS = (
    RuntimeError,
    EOFError,
    ValueError,
    KeyError,
    IndexError,
    struct.error,
    zipfile.BadZipFile,
    pickle.UnpicklingError,
)


class CarriesObjects(Exception):
    """A pickled file names a global that a plain-data reader does not admit; ``culprit`` names it."""

    def __init__(self, culprit: str) -> None:
        super().__init__(culprit)
        self.culprit = culprit


class BatchUnpickler(pickle.Unpickler):
    """Dicts, lists, strings, bytes, numbers and NumPy arrays; every other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ARRAY_GLOBALS[(module, name)]
        except KeyError:
            raise CarriesObjects(f"{module}.{name}".removeprefix("builtins.")) from None


def load_plain_pickle(file: BinaryIO) -> Any:
    """Unpickle ``file`` (Python 2 strings read as latin-1, as the official CIFAR-10 batches need)
    admitting only plain data and NumPy arrays; raises :class:`CarriesObjects` for anything else."""
    return BatchUnpickler(file, encoding="latin1").load()


_TORCH_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING"}


def _culprit(torch_text: str) -> str:
    """What torch's weights-only refusal names (``exec`` for ``builtins.exec``)."""
    found = _TORCH_GLOBAL.search(torch_text)
    return found.group(1).removeprefix("builtins.") if found else "a global outside tensors and numbers"


def pickled_global(path: Path) -> str | None:
    """The global a plain pickle file would call, read from its opcodes (nothing is run): the first
    outside torch and collections when there is one. None when the file is not a whole pickle or
    names no global (then it is damaged rather than dangerous)."""
    strings: list[str] = []
    names: list[str] = []
    try:
        with open(path, "rb") as f:
            for op, arg, _ in pickletools.genops(f):
                if op.name in ("GLOBAL", "INST"):
                    names.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL":  # module and name are the last two strings pushed
                    names.append(".".join(strings[-2:]) or "a global")
                elif op.name in _STRING_OPS:
                    strings.append(str(arg))
    except (ValueError, EOFError, OSError):
        return None
    foreign = [n for n in names if not n.startswith(("torch.", "collections."))]
    chosen = foreign or names
    return chosen[0].removeprefix("builtins.") if chosen else None


def load_torch_plain(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; torch's refusal becomes :class:`CarriesObjects`.

    Any other error is raised as torch raised it: ``OSError`` when the file cannot be read, one of
    :data:`UNREADABLE_TORCH_ERRORS` when it is truncated or not a torch file. Torch's
    warning about an unusual pickle protocol is silenced: the refusal (or the load) says enough.
    """
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if "Weights only load failed" not in text:  # torch's words since 1.13, whatever follows them
            raise
        if "Unsupported operand" not in text:  # a global: the zip or legacy torch format, with objects
            raise CarriesObjects(_culprit(text)) from None
        # Not torch's format: a plain pickle (which may name code) or any other bytes (damaged).
        culprit = pickled_global(path)
        if culprit is None:  # torch's text would advise weights_only=False: say what the bytes are instead
            raise pickle.UnpicklingError(
                "not in torch's file format (damaged, or saved by something other than torch.save)"
            ) from None
        raise CarriesObjects(f"{culprit}, in a plain pickle rather than a torch file") from None
