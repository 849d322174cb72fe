"""``python -m vaezoo.sampler run=<job> sampler=<name>``: fit a latent sampler to a finished job's codes.

Loads the job's model (:func:`vaezoo.jobs.load.load_run`), encodes its training and validation splits
to posterior means (:func:`vaezoo.samplers.through.encode_codes`: every layer of a hierarchy, flat),
fits the registered sampler on the training codes with its choices made on the validation codes,
and stores it in ``<job>/samplers/`` (:mod:`vaezoo.samplers.store`) with a grid of its samples. The
sample metrics then run through it with ``python -m vaezoo.evaluate run=<job> eval.sampler=<name>``.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from vaezoo.paths import config_dir, quote_run_path, require_run_argument

log = logging.getLogger("vaezoo.stages.sampler")


def fit_sampler(cfg: DictConfig) -> dict[str, Any]:
    """Fit ``cfg.sampler`` to the job's codes, store it in the job folder; returns the fit's report."""
    import torch

    from vaezoo.errors import ConfigError
    from vaezoo.jobs.load import load_run
    from vaezoo.post_fit import seed_everything
    from vaezoo.samplers import (
        PerLabelSampler,
        held_out_log_likelihood,
        sampler_entry,
        sampler_settings,
        standard_normal_log_prob,
    )
    from vaezoo.samplers.store import save_sampler
    from vaezoo.samplers.through import SampledThrough, check_continuous, encode_codes
    from vaezoo.training.pixels import image_grid, save_image_grid

    entry = sampler_entry(str(cfg.sampler))
    settings = sampler_settings(entry.name, plain(cfg.settings).get(entry.name))
    job_dir = Path(cfg.run).resolve()
    loaded = load_run(job_dir, cfg.checkpoint, cfg.data_root)
    model, datamodule = loaded.model, loaded.datamodule
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    datamodule.load()
    first = next(iter(datamodule.loader("val", batch_size=2)))
    check_continuous(model, first["x"].to(device), None if first.get("y") is None else first["y"].to(device))
    encoded = {
        split: encode_codes(model, datamodule.loader(split, batch_size=cfg.batch_size))
        for split in ("train", "val")
    }
    codes = {split: pair[0] for split, pair in encoded.items()}
    log.info(
        "encoded %d training and %d validation codes of %d units",
        len(codes["train"]),
        len(codes["val"]),
        codes["train"].shape[1],
    )
    seed_everything(cfg.seed)
    started = time.perf_counter()
    if model.requires_labels:  # a conditional model: one density per label (PerLabelSampler says why)
        train, val = encoded["train"], encoded["val"]
        if train[1] is None or val[1] is None:
            raise ConfigError(f"{type(model).__name__} is conditional but the data has no labels to fit on")
        sampler, fit = PerLabelSampler.fit_per_label(
            entry.cls,
            train,
            val,
            int(model.data_info.num_classes),
            int(cfg.seed),
            **settings,  # type: ignore[arg-type]
        )
    else:
        sampler, fit = entry.cls.fit(codes["train"], codes["val"], int(cfg.seed), **settings)
    seconds = time.perf_counter() - started
    report = {
        **fit,
        "codes": "posterior means (representation), every latent layer, flat"
        + (", one density per label" if isinstance(sampler, PerLabelSampler) else ""),
        "latent_dim": int(codes["train"].shape[1]),
        "train_codes": len(codes["train"]),
        "held_out_codes": len(codes["val"]),
        "held_out_split": "val",
        "standard_normal_held_out_log_likelihood": float(standard_normal_log_prob(codes["val"]).mean()),
        "held_out_log_density": held_out_log_likelihood(sampler, codes["val"]),
        "settings": settings,
        "seed": int(cfg.seed),
        "checkpoint": str(loaded.checkpoint),
        "fit_seconds": seconds,
    }
    if isinstance(sampler, PerLabelSampler):
        with torch.no_grad():
            given = sampler.log_prob(codes["val"], encoded["val"][1])
        report["held_out_log_density_given_label"] = float(given.double().mean())
    tensors, record = save_sampler(job_dir, sampler, report)
    seed_everything(cfg.seed)
    images = SampledThrough(model, sampler).sample(cfg.n_samples, sample_labels(model, cfg.n_samples, device))
    save_image_grid(image_grid(images.float().cpu(), nrow=8), tensors.with_name(f"{entry.name}_samples.png"))
    log.info(
        "sampler %s fitted in %.1f s: held-out log density %.2f nats per code (N(0, I): %.2f); stored in %s",
        entry.name,
        seconds,
        report["held_out_log_density"],
        report["standard_normal_held_out_log_likelihood"],
        record,
    )
    return report


def sample_labels(model: Any, n: int, device: Any) -> Any:
    """Labels 0, 1, ..., C-1, 0, ... for a conditional model's sample grid; None for the others."""
    import torch

    if not model.requires_labels:
        return None
    classes = int(model.data_info.num_classes or 1)
    return torch.arange(n, device=device) % classes


def plain(value: Any) -> dict[str, Any]:
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else dict(value or {})


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="sampler")
def run(cfg: DictConfig) -> None:
    from vaezoo.errors import VaezooError

    try:
        fit_sampler(cfg)
    except VaezooError as err:  # one line and a non-zero exit instead of Hydra's multi-line report
        print(f"vaezoo.stages.sampler: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def check_before_running(args: list[str]) -> None:
    """The sampler's name and settings, checked before Hydra writes into the job folder."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from vaezoo.samplers import sampler_settings

    if any(a.startswith("-") for a in args):
        return
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose("sampler", overrides=args)
    except HydraException:
        return
    if OmegaConf.is_missing(cfg, "sampler"):
        from vaezoo.errors import ConfigError
        from vaezoo.samplers import load_samplers

        raise ConfigError(f"give sampler=<name>, one of {', '.join(load_samplers())}")
    sampler_settings(str(cfg.sampler), plain(cfg.settings).get(str(cfg.sampler)))


def main() -> None:
    require_run_argument(
        "vaezoo.stages.sampler",
        "a finished job folder and a sampler, e.g. python -m vaezoo.sampler run=<job folder> sampler=gmm",
    )
    for arg in sys.argv[1:]:
        if arg.startswith("run=") and not (Path(arg[4:].strip("'\"")) / "results.json").is_file():
            print(
                f"vaezoo.stages.sampler: error: {arg[4:]} is not a finished vaezoo job (no results.json)",
                file=sys.stderr,
            )
            sys.exit(2)
    from vaezoo.jobs.safety import check_run_argument

    check_run_argument("vaezoo.stages.sampler", sys.argv[1:])  # before Hydra writes into the job folder
    sys.argv[1:] = quote_run_path(sys.argv[1:])
    from vaezoo.errors import VaezooError
    from vaezoo.stages.signals import run_stopping_on_signals

    try:
        check_before_running(sys.argv[1:])
    except VaezooError as err:
        print(f"vaezoo.stages.sampler: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    run_stopping_on_signals("vaezoo.stages.sampler", "the sampler's fit", run)


if __name__ == "__main__":
    main()
