"""Speed features of the ``hardware`` group that touch the model: threads, channels-last, torch.compile.

They live here, not in the models or the objective, so model code stays device-agnostic:

- ``num_threads``: intra-op CPU threads (set it to cores / parallel jobs when sweeping on a CPU);
- ``flush_denormal``: treat denormal floats as zero on the CPU (FTZ/DAZ). As training goes on some
  weights, gradients and Adam moments become denormal, and x86 arithmetic on them is many times
  slower: without it the 784-400-20 MLP's epoch grew from 3.0 s to 3.5 s over 6 epochs here;
- ``channels_last``: NHWC weights for models with 2-d convolutions (tensor cores read NHWC; the
  convolution layers then produce NHWC activations without copies);
- ``compile``: ``torch.compile`` of the model's per-step math (``elbo_terms``), which fuses the
  likelihood and KL element-wise work with the networks; state dicts and checkpoints are unchanged.

bf16 autocast is Lightning's ``precision="bf16-mixed"`` (chosen by ``vaezoo.builder.resolve_hardware``);
likelihoods and KL terms cast to float32 before they sum, so the ELBO is accumulated in fp32.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

import lightning as L
import torch
from omegaconf import DictConfig
from torch import nn

from vaezoo.errors import ConfigError
from vaezoo.models.base import VAEModel

log = logging.getLogger("vaezoo")

COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def has_conv(model: nn.Module) -> bool:
    """True when the model has 2-d (transposed) convolutions, the layers channels-last speeds up."""
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules())


def to_channels_last(model: nn.Module) -> bool:
    """Convert the model's 4-d weights to channels-last in place; returns whether anything changed."""
    if not has_conv(model):
        return False
    model.to(memory_format=torch.channels_last)
    return True


def compile_model(model: VAEModel, mode: str | None = None, backend: str = "inductor") -> None:
    """Compile the per-step math (``elbo_terms``) in place; parameters and state dict keys are unchanged."""
    if mode not in COMPILE_MODES:
        raise ConfigError(
            f"hardware.compile_mode={mode!r} is not one of {', '.join(str(m) for m in COMPILE_MODES)}"
        )
    model.elbo_terms = torch.compile(model.elbo_terms, mode=mode, backend=backend)  # type: ignore[method-assign]


def set_threads(num_threads: int | None) -> None:
    """Set torch's intra-op CPU threads (None leaves torch's default: one per core)."""
    if num_threads is None:
        return
    if num_threads < 1:
        raise ConfigError(f"hardware.num_threads must be >= 1 or null, got {num_threads}")
    torch.set_num_threads(num_threads)


def apply_process_settings(hw: DictConfig) -> None:
    """The process-wide CPU settings of the ``hardware`` group: threads and flush-denormal.

    Called before any data is loaded: worker threads inherit the floating-point mode from the
    thread that starts them, so flush-denormal set after torch's thread pool exists would reach the
    main thread only.
    """
    set_threads(hw.get("num_threads"))
    flush = bool(hw.get("flush_denormal", False))
    if not torch.set_flush_denormal(flush) and flush:
        log.info("hardware.flush_denormal: not supported by this CPU, left off")
    skip_nvml_availability_check()
    keep_freed_memory()


#: glibc's mallopt parameters (malloc.h): M_TRIM_THRESHOLD and M_MMAP_THRESHOLD.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: Blocks below this come from the heap and are reused (glibc's largest allowed value on 64-bit).
MMAP_THRESHOLD_BYTES = 32 * 2**20
#: Freed memory at the heap's top is handed back to the kernel only beyond this.
TRIM_THRESHOLD_BYTES = 512 * 2**20


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed blocks below 32 MiB for reuse instead of returning them to the kernel.

    A convolutional step allocates activations of a few MiB each; by default glibc serves some of
    them by ``mmap`` and unmaps them on free, so the next step touches fresh pages: the 64x64
    study model's step took 22,000 page faults (87 MB of zeroed pages) and 163 ms of CPU time on one
    thread here, 116 ms without them (docs/performance.md). Returns False where the C library is
    not glibc (nothing changed).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def skip_nvml_availability_check() -> None:
    """On a machine without a CUDA device, answer ``torch.cuda.is_available()`` without loading NVML.

    Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1`` on import so that the check never initialises
    CUDA before a fork. With torch's CUDA build and no device, each check then loads the NVML library
    anew, and ``torch.optim.Adam`` checks on every step: 0.25 ms of a 9 ms MLP step on this CPU.
    Without a device there is no CUDA state to protect, so the plain (cached-driver) check is used.
    """
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and not torch.cuda.is_available():
        del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]


class HardwareTuning(L.Callback):
    """Applies channels-last and torch.compile to the module's model once, before the first step."""

    def __init__(
        self,
        channels_last: bool = False,
        compile: bool = False,
        compile_mode: str | None = None,
        compile_backend: str = "inductor",
    ) -> None:
        self.channels_last = channels_last
        self.compile = compile
        self.compile_mode = compile_mode
        self.compile_backend = compile_backend
        self._applied = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._applied:
            return
        self._applied = True
        model: VAEModel = pl_module.model
        if self.channels_last and to_channels_last(model):
            log.info("hardware.channels_last: convolution weights in channels-last layout")
        if self.compile:
            compile_model(model, self.compile_mode, self.compile_backend)
            log.info("hardware.compile: elbo_terms compiled (mode=%s)", self.compile_mode or "default")


def hardware_callbacks(hw: DictConfig, accelerator: str) -> list[L.Callback]:
    """The callbacks for the model-side features.

    ``channels_last`` applies on GPUs only (tensor cores read NHWC; on CPUs it showed no gain for
    these networks); ``compile`` applies on any device.
    """
    channels_last = bool(hw.get("channels_last", False)) and accelerator == "gpu"
    compile_ = bool(hw.get("compile", False))
    if not (channels_last or compile_):
        return []
    return [
        HardwareTuning(
            channels_last=channels_last,
            compile=compile_,
            compile_mode=hw.get("compile_mode"),
            compile_backend=hw.get("compile_backend", "inductor"),
        )
    ]
