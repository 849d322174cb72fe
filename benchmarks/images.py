"""``python -m benchmarks.images``: time and memory of loading a folder of PNGs into memory.

Writes ``--n`` (50,000) ``--size`` x ``--size`` (32) colour PNGs into ``--folder`` (once; kept for
reruns) in two class sub-folders, then loads them as ``dataset=image_folder`` does, in a fresh
process per setting so each peak is its own: listing and header reading (``open``), decoding into
the uint8 tensor (``decode``), the resident memory after loading and at its peak, decoding in this
process and in one DataLoader worker process per core (``dataset.decode_workers``). The images are
8x8 random colour blocks scaled up bilinearly (smooth like photos, so PNG compresses them about as
much as CIFAR-10's); only the speed figures mean anything.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vaezoo.data.decoding import default_workers


def write_pngs(folder: Path, n: int, size: int, seed: int = 0) -> float:
    """``n`` PNGs in ``folder/a`` and ``folder/b``; returns the seconds it took (0 if already there)."""
    from PIL import Image

    if len(list(folder.glob("*/*.png"))) == n:
        return 0.0
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    for i in range(n):
        sub = folder / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        small.resize((size, size), Image.Resampling.BILINEAR).save(sub / f"{i:06d}.png")
    return time.perf_counter() - start


def memory_mib() -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak (VmHWM) in MiB, from /proc (Linux)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(line.split()[1]) / 1024
    return fields


def measure(folder: Path, workers: int) -> dict[str, float]:
    """Load the folder in memory as the CLI does; seconds and MiB of each stage."""
    import torch

    from vaezoo.data import build_datamodule

    torch.set_num_threads(1)
    before = memory_mib()
    start = time.perf_counter()
    dm = build_datamodule(in_memory=True, name="image_folder", path=str(folder), decode_workers=workers)
    opened = time.perf_counter()
    dm.load()
    loaded = time.perf_counter()
    after = memory_mib()
    tensors = sum(s.x.numel() * s.x.element_size() for s in dm.splits.values())
    return {
        "images": sum(len(s) for s in dm.splits.values()),
        "decode_workers": workers,
        "open_s": round(opened - start, 2),
        "decode_s": round(loaded - opened, 2),
        "total_s": round(loaded - start, 2),
        "images_per_s": round(sum(len(s) for s in dm.splits.values()) / (loaded - start)),
        "tensor_mib": round(tensors / 2**20, 1),
        "rss_before_mib": round(before["VmRSS"], 1),
        "rss_after_mib": round(after["VmRSS"], 1),
        "rss_peak_mib": round(after["VmHWM"], 1),
        "rss_growth_mib": round(after["VmRSS"] - before["VmRSS"], 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.images", description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/vaezoo-bench-pngs"))
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument(
        "--workers", type=int, nargs="*", help="decoding processes to try (default: 1 and one per core)"
    )
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)  # one measurement in this process
    args = parser.parse_args(argv)
    if args.measure is not None:
        print(json.dumps(measure(args.folder, args.measure)))
        return 0
    wrote = write_pngs(args.folder, args.n, args.size)
    disk = sum(p.stat().st_size for p in args.folder.glob("*/*.png"))
    print(
        f"{args.n} {args.size}x{args.size} colour PNGs in {args.folder}: {disk / 2**20:.1f} MiB on disk"
        + (f", written in {wrote:.1f} s" if wrote else "")
    )
    rows = []
    for workers in args.workers or sorted({1, default_workers()}):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.images",
                "--folder",
                str(args.folder),
                "--measure",
                str(workers),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"{row['decode_workers']} decoding process(es): open (list + headers) {row['open_s']} s, decode "
            f"{row['decode_s']} s, total {row['total_s']} s ({row['images_per_s']} images/s); uint8 tensor "
            f"{row['tensor_mib']} MiB, process memory +{row['rss_growth_mib']} MiB "
            f"(after {row['rss_after_mib']} MiB, peak {row['rss_peak_mib']} MiB)"
        )
    print(json.dumps({"n": args.n, "size": args.size, "disk_mib": round(disk / 2**20, 1), "runs": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
