"""``python -m benchmarks.report_size SWEEP [--jobs 10]``: how long an N-job sweep's HTML report takes and
how large it is (targets: under 10 s and 10 MB for 10 jobs).

The N jobs are copies of the given sweep's finished jobs (results, images, metrics and configs: what
the report reads), each with its own ``bench_copy=i`` override, in a temporary folder; checkpoints and
W&B files are left out since the report does not read them.

``python -m benchmarks.report_size --study 300 [--browser]`` needs no sweep: it writes a synthetic
finished disentanglement study of that many jobs (:func:`write_fake_study`: configs with ``study.*``,
results.json with the study's metrics, ~0.3 MB of PNGs a job, as the real jobs draw), writes its
report once with the pictures inlined and once linked (``inline_pictures_max_jobs``), and with
``--browser`` opens each in headless Chromium and times the load.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

from vaezoo.errors import VaezooError

#: The study's methods with their hyperparameter and six values (as conf/method/).
STUDY_METHODS = {
    "beta_vae": ("beta", [1.0, 2.0, 4.0, 6.0, 8.0, 16.0]),
    "annealed_vae": ("kl.max_capacity", [5.0, 10.0, 25.0, 50.0, 75.0, 100.0]),
    "factor_vae": ("model.gamma", [10.0, 20.0, 30.0, 40.0, 50.0, 100.0]),
    "beta_tcvae": ("model.tc_beta", [1.0, 2.0, 4.0, 6.0, 8.0, 10.0]),
    "dip_vae_i": ("model.lambda_od", [1.0, 2.0, 5.0, 10.0, 20.0, 50.0]),
    "dip_vae_ii": ("model.lambda_od", [1.0, 2.0, 5.0, 10.0, 20.0, 50.0]),
}
#: Picture names a dSprites job draws, each written as a PNG of about PICTURE_BYTES / len(...) bytes.
PICTURES = ("curves", "samples", "reconstructions", "traversals", "tsne", "factor_traversals")
PICTURE_BYTES = 300_000


def fake_sweep(source: Path, n_jobs: int, into: Path) -> Path:
    from vaezoo.jobs.folder import find_jobs

    jobs = [j for j in find_jobs(source) if j.status == "finished"]
    if not jobs:
        raise VaezooError(f"no finished job under {source}; run a sweep first (python -m vaezoo -m ...)")
    for i in range(n_jobs):
        job = jobs[i % len(jobs)]
        target = into / f"{i}_{job.name.split('_', 1)[-1]}-{i}"
        shutil.copytree(job.path, target, ignore=shutil.ignore_patterns("checkpoints", "wandb", "*.ckpt"))
        overrides = target / ".hydra" / "overrides.yaml"
        overrides.write_text(overrides.read_text() + f"- bench_copy={i}\n")
    return into


def png(width: int, height: int, rng: random.Random) -> bytes:
    """A grey PNG of random pixels (incompressible, so its size is about width × height bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    rows = b"".join(b"\0" + rng.randbytes(width) for _ in range(height))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 1))
        + chunk(b"IEND", b"")
    )


def study_scores(method: str, index: int, seed: int) -> dict[str, dict]:
    """Made-up metric entries (results.json's "metrics"): rising with the hyperparameter, noisy per seed."""
    rng = random.Random(f"{method}-{index}-{seed}")
    level = 0.2 + 0.1 * index + 0.05 * list(STUDY_METHODS).index(method)

    def noisy(scale: float) -> float:
        return max(0.0, min(1.0, level * scale + rng.gauss(0, 0.08)))

    return {
        "beta_vae_score": {"values": {"eval_accuracy": noisy(1.2), "train_accuracy": noisy(1.2)}},
        "factor_vae_score": {"values": {"eval_accuracy": noisy(1.1), "train_accuracy": noisy(1.1)}},
        "mig": {"values": {"mig": noisy(0.5), "gap_shape": noisy(0.3)}},
        "dci": {"values": {"disentanglement": noisy(0.7), "completeness": noisy(0.6)}},
        "sap": {"value": noisy(0.2)},
    }


def write_fake_study(into: Path, n_jobs: int, picture_bytes: int = PICTURE_BYTES, seeds: int = 50) -> Path:
    """A finished study sweep folder of ``n_jobs`` jobs in the order the sweep runs them (method, then
    value, then seed), as training leaves them: config.yaml, .hydra/overrides.yaml, results.json,
    images/*.png (no checkpoints: the report does not read them)."""
    rng = random.Random(0)
    side = int(math.sqrt(picture_bytes / len(PICTURES)))
    cells = [(m, i) for m in STUDY_METHODS for i in range(6)]
    per_cell = max(1, min(seeds, math.ceil(n_jobs / len(cells))))
    for num in range(n_jobs):
        method, index = cells[(num // per_cell) % len(cells)]
        seed = num % per_cell
        hyperparameter, values = STUDY_METHODS[method]
        overrides = [f"method={method}", f"study.index={index}", f"seed={seed}"]
        job = into / f"{num}_{','.join(overrides)}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
        config = {
            "seed": seed,
            "model": {"name": method, "latent_dim": 10},
            "study": {"method": method, "hyperparameter": hyperparameter, "values": values, "index": index},
        }
        (job / "config.yaml").write_text(json.dumps(config))  # JSON is YAML
        (job / ".hydra" / "config.yaml").write_text(json.dumps(config))
        test = {"elbo_nats": -40.0 - index - rng.random(), "log_px_z_nats": -30.0, "kl_nats": 10.0 - index}
        results = {
            "test": test,
            "train_seconds": 3600.0,
            "seed": seed,
            "metrics": study_scores(method, index, seed),
        }
        (job / "results.json").write_text(json.dumps(results))
        if picture_bytes:
            (job / "images").mkdir()
            for name in PICTURES:
                (job / "images" / f"{name}.png").write_bytes(png(side, side, rng))
    return into


def load_seconds(report: Path) -> tuple[float, int, int]:
    """Headless Chromium: seconds from navigation to the load event, the images loaded by then (lazy ones
    below the fold wait), and the plotly figures drawn."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"):
        options.add_argument(arg)
    options.add_argument("--disable-dev-shm-usage")
    options.add_argument("--window-size=1400,1000")
    driver = webdriver.Chrome(
        service=Service(shutil.which("chromedriver") or "chromedriver"), options=options
    )
    try:
        driver.set_page_load_timeout(600)
        driver.get(report.as_uri())
        timing = driver.execute_script(
            "const t = performance.getEntriesByType('navigation')[0];"
            "const drawn = Array.from(document.images).filter(i => i.complete && i.naturalWidth);"
            "return [t.loadEventEnd, drawn.length,"
            " document.querySelectorAll('.plotly-graph-div .main-svg').length];"
        )
        return timing[0] / 1000, int(timing[1]), int(timing[2])
    finally:
        driver.quit()


def study_benchmark(n_jobs: int, browser: bool) -> int:
    """Report size, write time and (with ``browser``) Chromium load time of an ``n_jobs`` study, inlined
    against linked pictures."""
    import os

    from vaezoo.reports.html import write_report

    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_fake_study(Path(tmp) / "study", n_jobs)
        for label, limit in (("inlined", n_jobs), ("linked", 0)):
            out = folder / f"report-{label}.html"
            started = time.perf_counter()
            write_report(folder, out, inline_pictures_max_jobs=limit)
            seconds = time.perf_counter() - started
            size = out.stat().st_size / 1e6
            line = f"{n_jobs} jobs, pictures {label}: written in {seconds:.1f} s, {size:.1f} MB"
            if browser:
                load, images, plots = load_seconds(out)
                line += f"; Chromium load {load:.2f} s ({images} images and {plots} plots drawn by then)"
            print(line, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report_size", description=__doc__)
    parser.add_argument(
        "sweep", type=Path, nargs="?", help="a finished sweep (or runs) folder to copy jobs from"
    )
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--study", type=int, metavar="N", help="a synthetic N-job study instead of a sweep")
    parser.add_argument("--browser", action="store_true", help="also time the load in headless Chromium")
    args = parser.parse_args(argv)
    if args.study is not None:
        return study_benchmark(args.study, args.browser)
    if args.sweep is None:
        print("vaezoo: error: give a sweep folder, or --study N for a synthetic study", file=sys.stderr)
        return 2
    from vaezoo.reports.html import write_report

    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = fake_sweep(args.sweep, args.jobs, Path(tmp))
        except VaezooError as err:
            print(f"vaezoo: error: {err}", file=sys.stderr)
            return 2
        started = time.perf_counter()
        path = write_report(folder, inline_pictures_max_jobs=args.jobs)  # every picture inlined, as before
        seconds = time.perf_counter() - started
        size = path.stat().st_size / 1e6
    print(f"report of {args.jobs} jobs: {seconds:.2f} s, {size:.2f} MB (targets: < 10 s, < 10 MB)")
    return 0 if seconds < 10 and size < 10 else 1


if __name__ == "__main__":
    sys.exit(main())
