"""``python -m benchmarks.conv_step``: the study's 64x64 convolutional step against its arithmetic limit.

The model is Locatello et al.'s (disentanglement_lib's conv encoder and deconv decoder, 10 Gaussian
latents, Bernoulli likelihood), built from ``experiment=repro_betavae_dsprites``, batch 64. For each
thread count it reports:

- the step's FLOPs (torch's FLOP counter over forward + backward: convolutions and matrix products);
- the matrix-product rate on the same threads (float32 1024x1024 @ 1024x1024) and the arithmetic
  limit = FLOPs / that rate: no step can be faster than its products at that rate;
- ``vaezoo``: vaezoo's model, objective (``Objective``, quiet steps) and optimiser (fused Adam from
  the config, ``skip_or_clip``), with batches unpacked from bit-packed dSprites as
  ``PackedSplit`` serves them (without Lightning's loop around it);
- ``plain``: a plain PyTorch loop on the same architecture and data (``benchmarks.references.PlainStep``),
  its layers PyTorch's own (vaezoo's ``GreyUpConv`` swapped back to ``nn.ConvTranspose2d``, same weights).

The data is one (shape, scale) block of generated dSprites (40,960 images): the step's cost does not
depend on which sprites it sees. The two loops alternate in rounds and the medians are reported,
in wall time and, on one thread, in the thread's CPU time (which other processes on a loaded
machine do not inflate). vaezoo's process settings (threads, flush-denormal, the allocator's
``keep_freed_memory``) apply unless ``--glibc-default`` leaves the allocator at glibc's default.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

import torch


def gemm_rates(threads: int, repeats: int = 7) -> dict[str, float]:
    """Median float32 1024^3 product rate (GFLOP/s), in wall time and thread CPU time."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    out = torch.empty(1024, 1024)
    torch.mm(a, b, out=out)
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.thread_time()
        torch.mm(a, b, out=out)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    flops = 2 * 1024**3
    return {"wall": flops / statistics.median(wall) / 1e9, "cpu": flops / statistics.median(cpu) / 1e9}


def step_flops(step: Callable[[], None]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return int(counter.get_total_flops())


def as_plain_pytorch(model: torch.nn.Module) -> torch.nn.Module:
    """The model with every ``GreyUpConv`` replaced by ``nn.ConvTranspose2d`` holding the same weights."""
    from vaezoo.nets.grey_upconv import GreyUpConv

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, GreyUpConv):
                plain = torch.nn.ConvTranspose2d(child.in_channels, 1, 4, 2, 1, bias=child.bias is not None)
                plain.load_state_dict(child.state_dict())
                setattr(parent, name, plain)
    return model


def build_steps(seed: int = 0) -> dict[str, Callable[[], None]]:
    """The vaezoo step and the plain step, each with its own model (same seed) and optimiser."""
    from benchmarks.references import LoopSettings, PlainStep
    from benchmarks.run import compose
    from vaezoo.builder import build, build_likelihood, build_model_for
    from vaezoo.data import dsprites as ds
    from vaezoo.data.info import DataInfo
    from vaezoo.objective import Objective
    from vaezoo.training.module import skip_or_clip

    cfg = compose(["experiment=repro_betavae_dsprites", "hardware=cpu"])
    info = DataInfo("dsprites", (1, ds.SIZE, ds.SIZE), 2, factor_names=ds.VARYING)
    packed = torch.from_numpy(ds.render_block(0, 1.0))
    split = ds.PackedSplit(packed, torch.zeros(len(packed), 5))
    batch = int(cfg.dataset.batch_size)
    gen = torch.Generator().manual_seed(seed)

    def model():
        torch.manual_seed(cfg.seed)
        return build_model_for(cfg, info, build_likelihood(cfg, info))

    vz_model, plain_model = model(), as_plain_pytorch(model())
    objective = Objective(kl=build(cfg.kl), k=int(cfg.objective.k))
    opt = cfg.optimizer
    vz_opt = torch.optim.Adam(
        vz_model.parameters(), lr=opt.lr, betas=tuple(opt.betas), eps=opt.eps,
        weight_decay=opt.weight_decay, fused=bool(opt.get("fused", False)) or None,
    )  # fmt: skip
    params = list(vz_model.parameters())

    def vaezoo_step() -> None:
        x = split[torch.randint(len(split), (batch,), generator=gen)]["x"]
        out = objective(vz_model, x, None, 0, with_metrics=False)
        vz_opt.zero_grad(set_to_none=True)
        out.loss.backward()
        skip_or_clip(params, opt.get("grad_skip_threshold"), opt.get("clip_norm"))
        vz_opt.step()

    settings = LoopSettings(
        beta=float(cfg.beta), lr=opt.lr, betas=tuple(opt.betas), eps=opt.eps,
        weight_decay=opt.weight_decay, clip_norm=opt.get("clip_norm"), dynamic_binarize=False,
        levels=2, fused_adam=bool(opt.get("fused", False)),
    )  # fmt: skip
    plain = PlainStep(plain_model, settings, fused=settings.fused_adam)

    def plain_step() -> None:
        plain(ds.unpack(packed[torch.randint(len(packed), (batch,), generator=gen)]), None)

    return {"vaezoo": vaezoo_step, "plain": plain_step}


def measure(threads: int, rounds: int, steps: int) -> dict:
    torch.set_num_threads(threads)
    loops = build_steps()
    flops = step_flops(loops["plain"])
    for run in loops.values():
        for _ in range(2):
            run()
    times: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in loops}
    gemm = []
    for _ in range(rounds):  # A, B, GEMM, A, B, GEMM, ...: load that drifts moves all alike
        for name, run in loops.items():
            t0, c0 = time.perf_counter(), time.thread_time()
            for _ in range(steps):
                run()
            times[name]["wall"].append((time.perf_counter() - t0) / steps)
            times[name]["cpu"].append((time.thread_time() - c0) / steps)
        gemm.append(gemm_rates(threads))
    rate = {k: statistics.median(g[k] for g in gemm) for k in ("wall", "cpu")}
    row: dict = {
        "threads": threads,
        "step_gflop": flops / 1e9,
        "gemm_gflops_per_s": rate,
        "limit_ms": {k: flops / rate[k] / 1e6 for k in rate},
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    for name, t in times.items():
        row[name] = {
            f"{clock}_ms": {"median": statistics.median(v) * 1e3, "best": min(v) * 1e3}
            for clock, v in t.items()
        }
        row[name]["over_limit"] = {k: row[name][f"{k}_ms"]["median"] / row["limit_ms"][k] for k in rate}
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.conv_step", description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians over them")
    p.add_argument("--steps", type=int, default=5, help="steps per loop per round")
    p.add_argument("--glibc-default", action="store_true", help="leave malloc at glibc's default (before)")
    p.add_argument("--out", default=None, help="JSON file for the figures")
    args = p.parse_args(argv)
    from vaezoo.training.hardware import keep_freed_memory

    torch.set_flush_denormal(True)
    kept = False if args.glibc_default else keep_freed_memory()
    rows = []
    for threads in args.threads:
        row = measure(threads, args.rounds, args.steps)
        row["keep_freed_memory"] = kept
        rows.append(row)
        clocks = ("wall", "cpu") if threads == 1 else ("wall",)  # CPU time sums threads; 1 thread only
        for clock in clocks:
            print(
                f"{threads} thread(s), {clock:>4} time: step {row['step_gflop']:.2f} GFLOP, matmul "
                f"{row['gemm_gflops_per_s'][clock]:.0f} GFLOP/s, limit {row['limit_ms'][clock]:.0f} ms | "
                + " | ".join(
                    f"{name} {row[name][f'{clock}_ms']['median']:.0f} ms (best "
                    f"{row[name][f'{clock}_ms']['best']:.0f}, {row[name]['over_limit'][clock]:.2f}x limit)"
                    for name in ("vaezoo", "plain")
                )
                + f" | load {row['load_average']}",
                flush=True,
            )
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"command": " ".join(sys.argv), "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
