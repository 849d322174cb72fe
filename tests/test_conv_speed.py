"""The CPU allocator setting that removes a convolutional step's page faults (docs/performance.md)."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import textwrap

import pytest

# Three 8 MiB blocks allocated and freed in reverse, ten times: glibc's default trims the freed heap
# top (24 MiB, above its adapted 16 MiB threshold) and faults the pages in again on the next round.
SCRIPT = textwrap.dedent(
    """
    import ctypes, resource
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    keep_freed_memory()
    size = 8 * 2**20
    def rounds(n):
        for _ in range(n):
            blocks = [libc.malloc(size) for _ in range(3)]
            for b in blocks:
                libc.memset(b, 1, size)
            for b in reversed(blocks):
                libc.free(b)
    rounds(2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    rounds(10)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def faults(keep: bool) -> int:
    """Page faults of the ten rounds: glibc's default in a fresh process, or here after the setting."""
    if keep:
        from vaezoo.training.hardware import keep_freed_memory

        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(SCRIPT, {"keep_freed_memory": keep_freed_memory})
        return int(printed.getvalue().split()[-1])
    out = subprocess.run(
        [sys.executable, "-c", "keep_freed_memory = bool\n" + SCRIPT],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_keep_freed_memory_stops_refaulting_freed_blocks():
    """With it, reused blocks fault no pages in; without it every round faults its 24 MiB in again."""
    default, kept = faults(keep=False), faults(keep=True)
    pages = 10 * 3 * 8 * 2**20 // 4096
    assert default > pages // 2  # glibc's default: most pages fault in again each round
    assert kept < pages // 100
