"""``python -m benchmarks``: vaezoo's training and evaluation speed against the loops users would write.

For every registered model family on MNIST and on a 32×32 colour input it times, in one process on
one machine, with the same model, data and batch size:

- ``vaezoo``: the real path (InMemoryDataModule + VAEModule + Lightning Trainer with the loggers,
  checkpointing, image grids and hardware callbacks that ``vaezoo.builder`` builds);
- ``bare``: a plain loop over the data held as one in-memory tensor (the best a framework could do);
- ``tutorial``: torchvision's dataset with ``ToTensor`` through a ``DataLoader``, plain loop;

and the importance-weighted bound (vaezoo's evaluation code) and peak memory. Every timing is
repeated in rounds (a vaezoo epoch, then one of each reference) and the median reported; ratios
are taken within each round and their median reported (the JSON also has the ratio of the
medians and every round's ratio). The headline cell (``vanilla`` on
MNIST: 784-400-20, batch 128) always runs whole epochs and the full k=1000 bound on the 10,000 test
images; other cells time a window of steps and a smaller bound unless ``--full`` is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

HEADLINE = ("vanilla", "mnist")
INPUTS = ("mnist", "colour32")
TARGETS_TEXT = {
    "vaezoo_over_bare": "vaezoo epoch / bare in-memory loop epoch <= 1.3",
    "tutorial_over_vaezoo": "tutorial pipeline epoch / vaezoo epoch >= 2.5",
    "iw_seconds": "IW bound k=1000 on the 10,000 test images < 300 s",
    "iw_peak_gib": "peak memory during that bound < 4 GiB",
    "iw_over_limit": "IW bound seconds / its arithmetic limit (decoder FLOPs x samples / GEMM rate) <= 1.5",
}

log = logging.getLogger("benchmarks")


# ----------------------------------------------------------------------------------------- memory
def reset_peak_memory() -> bool:
    """Reset the process's peak resident set (Linux VmHWM) and CUDA's peak; False if VmHWM cannot be reset."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_memory() -> dict[str, float | None]:
    """Peak resident memory of this process since the last reset (GiB), and CUDA's peak allocation."""
    import resource

    import torch

    rss = None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 2**20
    except OSError:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # lifetime peak (KiB on Linux)
    cuda = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return {"peak_rss_gib": None if rss is None else round(rss, 3), "cuda_peak_gib": cuda}


# ----------------------------------------------------------------------------------------- config
def compose(overrides: Sequence[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from vaezoo.paths import config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides))


def family_overrides(family: str, input_name: str, data_root: Path) -> tuple[list[str], str, str]:
    """Config overrides for one cell; returns (overrides, dataset name, note on the input)."""
    from benchmarks.data import SYNTHETIC, SYNTHETIC_NOTE, cifar10_present

    if input_name == "mnist":
        return [f"model={family}", "dataset=mnist"], "mnist", "MNIST 28x28, dynamic binarization"
    base = [f"model={family}", "dataset=cifar10", "likelihood=discretized_logistic"]
    if "net" in compose([f"model={family}"]).model:
        base.append("model/net=conv")
    if cifar10_present(data_root):
        return base, "cifar10", "CIFAR-10 32x32x3"
    return [*base, f"dataset.name={SYNTHETIC}"], SYNTHETIC, SYNTHETIC_NOTE


# ----------------------------------------------------------------------------------------- vaezoo
def synthetic_source(dataset_name: str) -> Any:
    """The synthetic input's data source, or None for a dataset vaezoo loads by name."""
    from benchmarks.data import SYNTHETIC, SyntheticColour32

    return SyntheticColour32() if dataset_name == SYNTHETIC else None


class EpochTimer:
    """Lightning callback: per-epoch training time (first to last step) and whole-epoch time.

    The whole epoch runs from the epoch's start to ``on_train_epoch_end``: training, validation,
    checkpointing and image grids. After each epoch it calls ``between_epochs`` (the benchmark runs
    one repeat of each reference there, so vaezoo and references alternate and share the
    machine's conditions).
    """

    def __new__(cls, *args: Any, **kwargs: Any):
        import lightning as L

        class _Timer(L.Callback):
            def __init__(self, warmup: int, between_epochs: Callable[[Any], None] | None = None) -> None:
                self.warmup = warmup
                self.between_epochs = between_epochs
                self.train_seconds: list[float] = []
                self.window_seconds: list[float] = []
                self.window_steps: list[int] = []
                self.full_epoch_seconds: list[float] = []

            def _now(self, pl_module) -> float:
                import torch

                if pl_module.device.type == "cuda":
                    torch.cuda.synchronize(pl_module.device)
                return time.perf_counter()

            def on_train_epoch_start(self, trainer, pl_module) -> None:
                self._epoch_start = self._window_start = self._now(pl_module)
                self._steps = 0

            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
                if batch_idx == self.warmup and self.warmup > 0:
                    self._window_start = self._now(pl_module)

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                self._steps += 1
                if batch_idx + 1 == trainer.num_training_batches:
                    now = self._now(pl_module)
                    self.train_seconds.append(now - self._epoch_start)
                    self.window_seconds.append(now - self._window_start)
                    self.window_steps.append(self._steps - self.warmup)

            def on_train_epoch_end(self, trainer, pl_module) -> None:
                self.full_epoch_seconds.append(self._now(pl_module) - self._epoch_start)
                if self.between_epochs is not None:
                    import torch

                    with torch.inference_mode(False), torch.enable_grad():
                        self.between_epochs(trainer)

        return _Timer(*args, **kwargs)


def vaezoo_fit(cfg, job_dir: Path, timer, source: Any = None) -> tuple[Any, Any]:
    """Build and fit exactly as a training job does (without its test and report); ``source``
    replaces the named dataset's loader (the synthetic input)."""
    from vaezoo.builder import build_loggers, build_module, build_trainer, resolve_hardware

    job_dir.mkdir(parents=True, exist_ok=True)
    hardware = resolve_hardware(cfg.hardware)
    datamodule, module = build_module(cfg, source)
    loggers = build_loggers(cfg, job_dir, "bench", None, [])
    trainer, _ = build_trainer(
        cfg, job_dir, hardware, datamodule, loggers, more_callbacks=(timer,), enable_model_summary=False
    )
    trainer.fit(module, datamodule=datamodule)
    return module, datamodule


# ----------------------------------------------------------------------------------------- cells
@dataclass
class CellPlan:
    family: str
    input_name: str
    full: bool  # whole epochs and the full bound
    repeats: int
    window_steps: int
    warmup: int
    iw_k: int
    iw_images: int | None  # None: the whole test split


@dataclass
class CellResult:
    family: str
    input: str
    status: str = "ok"
    reason: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def summarise(seconds: list[float], steps: list[int], images_per_step: float, steps_per_epoch: int) -> dict:
    per_step = [s / max(n, 1) for s, n in zip(seconds, steps, strict=True)]
    med_step = median(per_step)
    return {
        "repeat_seconds": [round(s, 4) for s in seconds],
        "timed_steps": steps,
        "median_step_seconds": med_step,
        "images_per_second": images_per_step / med_step if med_step else None,
        "epoch_seconds": med_step * steps_per_epoch if med_step else None,
    }


def run_cell(plan: CellPlan, args: argparse.Namespace, job_root: Path) -> CellResult:
    import torch
    from omegaconf import OmegaConf
    from torch.utils.data import DataLoader

    from benchmarks.data import tutorial_dataset
    from benchmarks.references import LoopSettings, PlainStep, bare_epoch, tutorial_epoch
    from vaezoo.builder import build_likelihood, build_model_for
    from vaezoo.errors import ConfigError, DataError
    from vaezoo.evaluation.metrics import importance_weighted_bound

    result = CellResult(plan.family, plan.input_name)
    try:
        overrides, dataset_name, note = family_overrides(plan.family, plan.input_name, args.data_root)
    except Exception as err:  # a family whose config does not compose for this input
        return CellResult(plan.family, plan.input_name, "skipped", f"config: {err}".splitlines()[0])
    warmup = 0 if plan.full else plan.warmup
    limit = [] if plan.full else [f"+trainer.limit_train_batches={warmup + plan.window_steps}"]
    limit += [] if plan.full else ["+trainer.limit_val_batches=1"]
    overrides = [
        *overrides,
        f"hardware={args.hardware}",
        f"paths.data={args.data_root}",
        f"paths.runs={job_root}",
        f"logger={args.logger}",
        f"dataset.batch_size={args.batch_size}",
        f"trainer.max_epochs={plan.repeats}",
        f"trainer.enable_progress_bar={str(args.progress_bar).lower()}",
        *limit,
        *([f"hardware.num_threads={args.threads}"] if args.threads else []),
    ]
    cfg = compose(overrides)
    result.data.update(
        {
            "input_note": note,
            "dataset": dataset_name,
            "overrides": overrides,
            "model": OmegaConf.to_container(cfg.model, resolve=True),
            "likelihood": cfg.likelihood._target_.rsplit(".", 1)[-1],
            "batch_size": args.batch_size,
            "mode": "whole epochs"
            if plan.full
            else f"window of {plan.window_steps} steps after {warmup} warm-up",
        }
    )
    if cfg.kl._target_.rsplit(".", 1)[-1] != "ConstantBeta":
        raise ConfigError("the benchmark's plain loops implement kl=constant only")
    max_steps = None if plan.full else warmup + plan.window_steps
    refs: dict[str, Any] = {"bare": [], "tutorial": []}

    def fresh_model(info, device):
        """The same model as vaezoo's: same config, same seed, same initialisation."""
        torch.manual_seed(cfg.seed)
        return build_model_for(cfg, info, build_likelihood(cfg, info)).to(device)

    def one_reference_round(trainer) -> None:
        """One repeat of each reference, between two vaezoo epochs, on vaezoo's own training split."""
        datamodule, device = trainer.datamodule, trainer.strategy.root_device
        split = datamodule.splits["train"]
        if "settings" not in refs:
            refs["settings"] = s = LoopSettings(
                beta=float(cfg.beta),
                lr=cfg.optimizer.lr,
                betas=tuple(cfg.optimizer.betas),
                eps=cfg.optimizer.eps,
                weight_decay=cfg.optimizer.weight_decay,
                clip_norm=cfg.optimizer.get("clip_norm"),
                dynamic_binarize=split.dynamic_binarize,
                levels=split.levels,
                fused_adam=bool(cfg.optimizer.get("fused", False)),
                grad_skip_threshold=cfg.optimizer.get("grad_skip_threshold"),
            )
            refs["bare_model"] = fresh_model(datamodule.info, device)
            refs["bare_step"] = PlainStep(refs["bare_model"], s, fused=s.fused_adam)
            refs["tut_model"] = fresh_model(datamodule.info, device)
            refs["tut_step"] = PlainStep(refs["tut_model"], s, fused=False)
            tut_data = tutorial_dataset(
                dataset_name,
                args.data_root,
                int(cfg.dataset.val_size),
                int(cfg.dataset.split_seed),
                split.x,
                split.y,
            )
            refs["loader"] = DataLoader(tut_data, batch_size=args.batch_size, shuffle=True)
        s = refs["settings"]
        refs["bare"].append(
            bare_epoch(
                refs["bare_model"], s, split.x, split.y, args.batch_size, warmup, max_steps, refs["bare_step"]
            )
        )
        refs["tutorial"].append(
            tutorial_epoch(
                refs["tut_model"], s, refs["loader"], device, split.y is not None, warmup, max_steps,
                refs["tut_step"],
            )
        )  # fmt: skip

    # vaezoo (the real path), with one round of the references after each of its epochs.
    timer = EpochTimer(warmup, one_reference_round)
    reset_peak_memory()
    try:
        module, datamodule = vaezoo_fit(
            cfg, job_root / f"{plan.family}-{plan.input_name}", timer, synthetic_source(dataset_name)
        )
    except (ConfigError, DataError) as err:
        return CellResult(plan.family, plan.input_name, "skipped", str(err))
    memory = peak_memory()  # vaezoo and the references together
    device = module.device
    n_train = len(datamodule.splits["train"])
    steps_per_epoch = math.ceil(n_train / args.batch_size)
    images_per_step = args.batch_size if not plan.full else n_train / steps_per_epoch
    vz = summarise(timer.window_seconds, timer.window_steps, images_per_step, steps_per_epoch)
    vz["whole_epoch_with_validation_seconds"] = median(timer.full_epoch_seconds) if plan.full else None
    vz["train_epoch_seconds_measured"] = median(timer.train_seconds) if plan.full else None
    vz.update(memory)
    result.data["steps_per_epoch"] = steps_per_epoch
    result.data["train_images"] = n_train
    result.data["device"] = str(device)
    bare, tutorial = (
        summarise([r[1] for r in refs[k]], [r[2] for r in refs[k]], images_per_step, steps_per_epoch)
        for k in ("bare", "tutorial")
    )
    for k in ("bare_model", "bare_step", "tut_model", "tut_step", "loader"):
        refs.pop(k, None)

    result.data["vaezoo"], result.data["bare"], result.data["tutorial"] = vz, bare, tutorial
    # Ratios within each round (vaezoo epoch, then one of each reference), then their median: a
    # machine whose load drifts between rounds moves both sides of a ratio together.
    vz_t = [t / n for t, n in zip(timer.window_seconds, timer.window_steps, strict=True)]
    bare_t, tut_t = ([r[1] / r[2] for r in refs[k]] for k in ("bare", "tutorial"))
    result.data["ratios"] = {
        "vaezoo_over_bare": median([a / b for a, b in zip(vz_t, bare_t, strict=True)]),
        "tutorial_over_vaezoo": median([b / a for a, b in zip(vz_t, tut_t, strict=True)]),
        "per_round_vaezoo_over_bare": [round(a / b, 3) for a, b in zip(vz_t, bare_t, strict=True)],
        "per_round_tutorial_over_vaezoo": [round(b / a, 3) for a, b in zip(vz_t, tut_t, strict=True)],
        "of_medians_vaezoo_over_bare": vz["epoch_seconds"] / bare["epoch_seconds"],
        "of_medians_tutorial_over_vaezoo": tutorial["epoch_seconds"] / vz["epoch_seconds"],
    }

    # The importance-weighted bound: vaezoo's evaluation code on the trained model.
    model = module.model.to(device).eval()
    test_batch = int(cfg.eval.batch_size)
    n_test = len(datamodule.splits["test"])
    n_images = n_test if plan.iw_images is None else min(plan.iw_images, n_test)
    batches = list(
        islice(iter(datamodule.loader("test", batch_size=test_batch)), math.ceil(n_images / test_batch))
    )
    n_images = sum(b["x"].shape[0] for b in batches)
    iw: dict[str, Any] = {
        "k": plan.iw_k,
        "chunk": int(cfg.eval.iw_chunk),
        "batch_size": test_batch,
        "images": n_images,
    }
    from benchmarks.arithmetic import iw_arithmetic_limit

    limit_before = iw_arithmetic_limit(model, batches[0], plan.iw_k, n_images, iw["chunk"], device)
    reset_peak_memory()
    try:
        started = time.perf_counter()
        bound = importance_weighted_bound(
            model.log_importance_weights, batches, plan.iw_k, int(cfg.eval.iw_chunk)
        )
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        iw["seconds"] = time.perf_counter() - started
        iw["bound_nats"] = float(bound.double().mean())
        iw["seconds_for_k1000_full_test"] = iw["seconds"] * (1000 * n_test) / (plan.iw_k * n_images)
        iw["extrapolated"] = not (plan.iw_k == 1000 and n_images == n_test)
        # The floor: decoder FLOPs x samples at the GEMM rate measured just before and just after.
        limit_after = iw_arithmetic_limit(model, batches[0], plan.iw_k, n_images, iw["chunk"], device)
        rate = statistics.median(
            [limit_before["gemm_gflops_per_second"], limit_after["gemm_gflops_per_second"]]
        )
        iw["arithmetic"] = {
            **limit_before,
            "gemm_gflops_per_second": rate,
            "gemm_gflops_per_second_before_after": [
                limit_before["gemm_gflops_per_second"],
                limit_after["gemm_gflops_per_second"],
            ],
            "limit_seconds": limit_before["decoder_gflops_total"] / rate,
        }
        iw["measured_over_limit"] = iw["seconds"] / iw["arithmetic"]["limit_seconds"]
    except NotImplementedError as err:
        iw["seconds"] = None
        iw["note"] = f"not available: {err}"
    iw.update(peak_memory())
    iw["trained_epochs"] = (
        plan.repeats if plan.full else f"{plan.repeats} x {warmup + plan.window_steps} steps"
    )
    result.data["iw"] = iw
    del module, datamodule, batches
    return result


# ----------------------------------------------------------------------------------------- report
def fmt(x: Any, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def print_table(results: list[CellResult], out=sys.stdout) -> None:
    head = (
        f"{'family':<10} {'input':<9} {'img/s':>8} {'epoch s':>8} {'bare s':>8} {'tut. s':>8} "
        f"{'vz/bare':>7} {'tut/vz':>7} {'IW s':>8} {'IW k x n':>12} {'GEMM GF/s':>9} {'IW/limit':>8} "
        f"{'peak GiB':>8}"
    )
    print(head, file=out)
    print("-" * len(head), file=out)
    for r in results:
        if r.status != "ok":
            print(f"{r.family:<10} {r.input:<9} {r.status}: {r.reason}", file=out)
            continue
        d = r.data
        iw = d["iw"]
        peak = max(x for x in (d["vaezoo"]["peak_rss_gib"], iw["peak_rss_gib"]) if x is not None)
        print(
            f"{r.family:<10} {r.input:<9} {fmt(d['vaezoo']['images_per_second'], '.0f'):>8} "
            f"{fmt(d['vaezoo']['epoch_seconds']):>8} {fmt(d['bare']['epoch_seconds']):>8} "
            f"{fmt(d['tutorial']['epoch_seconds']):>8} {fmt(d['ratios']['vaezoo_over_bare']):>7} "
            f"{fmt(d['ratios']['tutorial_over_vaezoo']):>7} {fmt(iw.get('seconds'), '.1f'):>8} "
            f"{str(iw['k']) + ' x ' + str(iw['images']):>12} "
            f"{fmt((iw.get('arithmetic') or {}).get('gemm_gflops_per_second'), '.1f'):>9} "
            f"{fmt(iw.get('measured_over_limit')):>8} {fmt(peak):>8}",
            file=out,
        )


def check_targets(results: list[CellResult]) -> list[dict[str, Any]]:
    head = next((r for r in results if (r.family, r.input) == HEADLINE and r.status == "ok"), None)
    if head is None:
        return [{"target": t, "met": None, "why": "headline cell did not run"} for t in TARGETS_TEXT.values()]
    d = head.data
    iw = d["iw"]
    full_iw = not iw.get("extrapolated", True) and iw.get("seconds") is not None
    checks = [
        ("vaezoo_over_bare", d["ratios"]["vaezoo_over_bare"], lambda v: v <= 1.3),
        ("tutorial_over_vaezoo", d["ratios"]["tutorial_over_vaezoo"], lambda v: v >= 2.5),
        ("iw_seconds", iw.get("seconds") if full_iw else None, lambda v: v < 300),
        ("iw_peak_gib", iw.get("peak_rss_gib") if full_iw else None, lambda v: v < 4),
        ("iw_over_limit", iw.get("measured_over_limit"), lambda v: v <= 1.5),
    ]
    rows = [
        {"target": TARGETS_TEXT[key], "value": value, "met": None if value is None else bool(ok(value))}
        for key, value, ok in checks
    ]
    whole = d["vaezoo"].get("whole_epoch_with_validation_seconds")
    if whole:  # for information: the epoch as a user sees it, validation and checkpoint included
        rows.append(
            {
                "target": "(info, no target) whole vaezoo epoch incl. validation + checkpoint / bare epoch",
                "value": whole / d["bare"]["epoch_seconds"],
                "met": None,
            }
        )
    return rows


def host_info() -> dict[str, Any]:
    import torch

    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        cpu = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")]
        info["cpu"] = cpu[0].split(":", 1)[1].strip() if cpu else platform.processor()
    except OSError:
        info["cpu"] = platform.processor()
    return info


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time vaezoo's training and IW evaluation against a tutorial pipeline and a bare "
        "in-memory loop, for every model family on MNIST and a 32x32 colour input.",
    )
    p.add_argument(
        "--data-root",
        type=Path,
        default=Path(os.environ.get("VAEZOO_DATA", "data")),
        help="folder with MNIST/raw (and optionally cifar-10-batches-py); default $VAEZOO_DATA or data/",
    )
    p.add_argument("--out", type=Path, default=None, help="JSON file (default runs/bench/bench-<time>.json)")
    p.add_argument(
        "--families", nargs="*", default=None, help="model families (default: every registered one)"
    )
    p.add_argument("--inputs", nargs="*", default=list(INPUTS), choices=INPUTS)
    p.add_argument(
        "--repeats", type=int, default=3, help="timed repeats per measurement; the median is reported"
    )
    p.add_argument(
        "--window-steps", type=int, default=5, help="timed steps per repeat outside the headline cell"
    )
    p.add_argument("--warmup-steps", type=int, default=1)
    p.add_argument(
        "--iw-k", type=int, default=100, help="IW samples outside the headline cell (headline: 1000)"
    )
    p.add_argument(
        "--iw-images", type=int, default=50, help="test images for the IW bound outside the headline"
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="longer and steadier: every cell whole epochs, k=1000 bound on the whole test split, 5 repeats",
    )
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--hardware", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's, one per core)"
    )
    p.add_argument(
        "--logger", default="csv", choices=["csv", "wandb", "none"], help="vaezoo's logger (default csv)"
    )
    p.add_argument(
        "--progress-bar", action="store_true", help="keep Lightning's progress bar on in vaezoo runs"
    )
    args = p.parse_args(argv)
    if args.full and args.repeats == 3:
        args.repeats = 5
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import warnings

    import lightning  # noqa: F401  (configures its loggers on import; quieted below)
    import torch

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for noisy in ("lightning", "lightning.pytorch", "lightning.fabric", "vaezoo"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="lightning")

    from vaezoo.models import MODELS
    from vaezoo.training.hardware import apply_process_settings

    # vaezoo's process-wide CPU settings (threads, flush-denormal) before torch starts its thread pool;
    # the reference loops run in this process, so they get them too.
    hw = compose(
        [f"hardware={args.hardware}", *([f"hardware.num_threads={args.threads}"] if args.threads else [])]
    )
    apply_process_settings(hw.hardware)
    args.data_root = args.data_root.expanduser().resolve()
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = args.out or Path("runs") / "bench" / f"bench-{stamp}.json"
    job_root = out.parent / f"bench-{stamp}-jobs"
    families = args.families or sorted(MODELS)
    unknown = sorted(set(families) - set(MODELS))
    if unknown:
        print(
            f"benchmarks: unknown model families {', '.join(unknown)}; "
            f"registered: {', '.join(sorted(MODELS))}",
            file=sys.stderr,
        )
        return 2
    # The headline first, so its figures exist even if a later cell fails.
    cells = sorted(((f, i) for f in families for i in args.inputs), key=lambda c: c != HEADLINE)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks", *(argv or sys.argv[1:])]),
        "started_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": host_info(),
        "load_average_start": load_average(),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "flush_denormal": bool(hw.hardware.get("flush_denormal", False)),
        "cells": [],
    }
    print(
        f"benchmarks: {len(cells)} cells on {report['host']['cuda'] or report['host']['cpu']} "
        f"({report['host']['torch_threads']} torch threads), load average {report['load_average_start']}",
        flush=True,
    )
    results: list[CellResult] = []
    for family, input_name in cells:
        full = args.full or (family, input_name) == HEADLINE
        plan = CellPlan(
            family,
            input_name,
            full,
            args.repeats,
            args.window_steps,
            args.warmup_steps,
            iw_k=1000 if full else args.iw_k,
            iw_images=None if full else args.iw_images,
        )
        t0 = time.perf_counter()
        print(f"- {family} on {input_name}: {'whole epochs' if full else 'step window'} ...", flush=True)
        try:
            result = run_cell(plan, args, job_root)
        except Exception as err:  # keep going: one broken family must not hide the others' figures
            traceback.print_exc()
            result = CellResult(family, input_name, "error", f"{type(err).__name__}: {err}".splitlines()[0])
        result.data["cell_seconds"] = round(time.perf_counter() - t0, 1)
        if result.status != "ok":
            print(f"  {result.status}: {result.reason}", flush=True)
        else:
            r = result.data["ratios"]
            print(
                f"  vaezoo/bare {r['vaezoo_over_bare']:.2f}, "
                f"tutorial/vaezoo {r['tutorial_over_vaezoo']:.2f}, "
                f"IW {fmt(result.data['iw'].get('seconds'), '.1f')} s ({result.data['cell_seconds']} s)",
                flush=True,
            )
        results.append(result)
        report["cells"] = [
            {"family": r.family, "input": r.input, "status": r.status, "reason": r.reason, **r.data}
            for r in results
        ]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str))
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    report["targets"] = check_targets(results)
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    report["load_average_end"] = load_average()
    out.write_text(json.dumps(report, indent=2, default=str))
    print()
    print_table(results)
    print()
    print("targets (headline: vanilla 784-400-20 on MNIST, batch 128, medians of repeats):")
    for t in report["targets"]:
        status = (
            ("info" if "info" in t["target"] else "n/a")
            if t["met"] is None
            else ("met" if t["met"] else "NOT MET")
        )
        print(f"  [{status}] {t['target']}: {fmt(t.get('value'))}")
    print(f"\n{report['total_seconds']} s in all; load average {report['load_average_end']}; JSON: {out}")
    return 1 if any(r.status == "error" for r in results) else 0
