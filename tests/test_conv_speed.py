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


@pytest.mark.parametrize("shape", [(3, 5, 7, 7), (2, 4, 6, 9), (4, 3, 1, 1)])
def test_grey_upconv_is_the_transposed_convolution_forward_and_backward(shape):
    """Same output and gradients as conv_transpose2d (float64, gradcheck), odd and non-square maps."""
    import torch

    from vaezoo.nets.grey_upconv import GreyUpConv

    torch.manual_seed(0)
    layer = GreyUpConv(shape[1]).double()
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    expected = torch.nn.functional.conv_transpose2d(x, layer.weight, layer.bias, stride=2, padding=1)
    y = layer(x)
    assert y.shape == (shape[0], 1, 2 * shape[2], 2 * shape[3])
    torch.testing.assert_close(y, expected)
    grad_y = torch.randn_like(y)
    got = torch.autograd.grad(y, (x, layer.weight, layer.bias), grad_y)
    want = torch.autograd.grad(expected, (x, layer.weight, layer.bias), grad_y)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)
    assert torch.autograd.gradcheck(layer, (x,))


def test_grey_decoders_use_it_and_keep_the_checkpoint_layout():
    """The conv decoder's last grey layer is a GreyUpConv whose state dict nn.ConvTranspose2d loads."""
    import torch

    from vaezoo.nets.conv import ConvDecoder
    from vaezoo.nets.grey_upconv import GreyUpConv

    grey = ConvDecoder(10, (1, 64, 64), 1, channels=(32, 32, 64, 64))
    colour = ConvDecoder(10, (3, 64, 64), 3, channels=(32, 32, 64, 64))
    last = grey.up.net[-1]
    assert isinstance(last, GreyUpConv)
    assert not any(isinstance(m, GreyUpConv) for m in colour.modules())
    plain = torch.nn.ConvTranspose2d(32, 1, 4, 2, 1)
    plain.load_state_dict(last.state_dict())
    h = torch.randn(2, 32, 32, 32)
    torch.testing.assert_close(last(h), plain(h), rtol=1e-5, atol=1e-5)
