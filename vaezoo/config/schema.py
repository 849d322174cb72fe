"""The one validation pass over a composed config: keys, types, ranges and cross-group rules.

It runs in ``python -m vaezoo`` before Hydra starts the job (so nothing is written or loaded for a
bad config, and no torch import is paid for it), again in :func:`vaezoo.builder.build_module` for
every other entry point, and on ``--cfg job``.

The schema of a group is not a second copy kept here: a key's type is the type of its value in the
group's own YAML (``seed: 0`` makes ``seed`` an integer), and a key added with ``+`` must be a
parameter of the node's target (``_target_``, the registered model class, ``lightning.Trainer``
for ``trainer.*``). So a new dataset, model or likelihood YAML brings its schema with it; sections
this module knows nothing about are left alone. Value ranges that types cannot express, and rules
that span groups, are the tables :data:`RANGES` and :func:`cross_group_problems` below.
"""

from __future__ import annotations

import difflib
import inspect
import itertools
import math
import re
from collections.abc import Callable, Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vaezoo.errors import ConfigError

# Keys that moved out of a group into the run's own sections: the option files set them where Hydra
# composes them (conf/model/beta_vae.yaml sets beta, conf/dataset/dsprites.yaml eval.metrics), so
# nothing is moved or stripped in code. old key -> its place now.
MOVED_KEYS: dict[str, str] = {
    "model.default_beta": "beta",
    "model.clip_norm": "optimizer.clip_norm",
    "model.grad_skip_threshold": "optimizer.grad_skip_threshold",
    "dataset.eval_metrics": "eval.metrics",
}

MULTIRUN_FLAGS = ("-m", "--multirun")
# Hydra flags after which nothing is composed for a job (help, shell completion, info).
NO_JOB_FLAGS = ("--help", "-h", "--hydra-help", "--info", "-i", "--version", "--shell-completion", "-sc")
# Hydra flags that take a value (the value is not an override).
VALUE_FLAGS = (
    *("--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-dir", "-cd"),
    "--experimental-rerun",
)
MAX_COMBINATIONS = 32  # group-choice combinations of a sweep composed and checked one by one


# --- ranges -----------------------------------------------------------------------------------------
def _int(lo: int | None = None) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and (lo is None or v >= lo)


def _num(lo: float | None = None, strict: bool = False) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        return lo is None or (v > lo if strict else v >= lo)

    return ok


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _one_of(*values: str) -> Callable[[Any], bool]:
    return lambda v: v in values


def _betas(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(_num(0)(b) and b < 1 for b in v)


def _count_or_fraction(v: Any) -> bool:
    """A number of examples (integer >= 0) or a share of them (0 < x < 1; own-data datasets)."""
    return _int(0)(v) or (_num(0, strict=True)(v) and v < 1)


def _ints_or_int(v: Any) -> bool:
    return _int(1)(v) or (isinstance(v, list) and bool(v) and all(_int(1)(x) for x in v))


def _lists_of_ints(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(h, list) and _ints_or_int(h) for h in v)


def _ints(v: Any) -> bool:
    """A non-empty list of integers >= 1 (channels per convolution)."""
    return isinstance(v, list) and bool(v) and all(_int(1)(x) for x in v)


def _levels(v: Any) -> bool:
    """A non-empty list of integers >= 2 (FSQ levels per channel)."""
    return isinstance(v, list) and bool(v) and all(_int(2)(x) for x in v)


def _widths(v: Any) -> bool:
    """An MLP's hidden widths (a list of integers >= 1, empty: none) or a conv net's one width."""
    return _int(1)(v) or (isinstance(v, list) and all(_int(1)(x) for x in v))


def _fraction(v: Any, low_open: bool, high_open: bool) -> bool:
    if not _num()(v):
        return False
    return (v > 0 if low_open else v >= 0) and (v < 1 if high_open else v <= 1)


def _numbers(v: Any) -> bool:
    """A non-empty list of numbers >= 0 (a study method's hyperparameter values)."""
    return isinstance(v, list) and bool(v) and all(_num(0)(x) for x in v)


def _size(v: Any) -> bool:
    """A square side or [height, width], in pixels."""
    return _int(1)(v) or (isinstance(v, list) and len(v) == 2 and all(_int(1)(x) for x in v))


def _devices(v: Any) -> bool:
    """Lightning's devices: -1 (every visible one) or a count >= 1."""
    return _int(1)(v) or (_int()(v) and v == -1)


# path -> (check, what a good value is). Applied when the key exists, whatever group provides it.
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (_int(0), "an integer >= 0, e.g. seed=1"),
    "beta": (_num(0), "a number >= 0, e.g. beta=4"),
    "trainer.max_epochs": (_int(1), "an integer >= 1, e.g. trainer.max_epochs=10"),
    "trainer.max_steps": (
        lambda v: _int(0)(v) or v == -1,
        "an integer >= 0 (0: no training, the untrained model is evaluated; -1: no limit, trainer.max_epochs "
        "ends the run), e.g. trainer.max_steps=300000",
    ),
    "trainer.log_every_n_steps": (_int(1), "an integer >= 1, e.g. trainer.log_every_n_steps=50"),
    "trainer.check_val_every_n_epoch": (_int(1), "an integer >= 1, e.g. trainer.check_val_every_n_epoch=1"),
    "optimizer.lr": (_num(0, strict=True), "a number > 0, e.g. optimizer.lr=1e-3"),
    "optimizer.eps": (_num(0, strict=True), "a number > 0, e.g. optimizer.eps=1e-8"),
    "optimizer.weight_decay": (_num(0), "a number >= 0, e.g. optimizer.weight_decay=0"),
    "optimizer.betas": (_betas, "two numbers in [0, 1), e.g. optimizer.betas=[0.9,0.999]"),
    "optimizer.clip_norm": (
        _optional(_num(0, strict=True)),
        "a number > 0 or null, e.g. optimizer.clip_norm=100",
    ),
    "optimizer.grad_skip_threshold": (
        _optional(_num(0, strict=True)),
        "a number > 0 or null, e.g. optimizer.grad_skip_threshold=5000",
    ),
    "optimizer.max_consecutive_skips": (_int(1), "an integer >= 1, e.g. optimizer.max_consecutive_skips=100"),
    "objective.k": (_int(1), "an integer >= 1 (1: ELBO, > 1: IWAE bound), e.g. objective.k=5"),
    "model.latent_dim": (
        _ints_or_int,
        "an integer >= 1 (hvae, stacked: or a list of them), e.g. model.latent_dim=20",
    ),
    "model.between": (_lists_of_ints, "a list of lists of integers >= 1, e.g. model.between=[[100,100]]"),
    "model.num_layers": (_int(1), "an integer >= 1, e.g. model.num_layers=3"),
    "model.width": (_int(1), "an integer >= 1, e.g. model.width=256"),
    "dataset.batch_size": (_int(1), "an integer >= 1, e.g. dataset.batch_size=128"),
    "dataset.eval_batch_size": (_int(1), "an integer >= 1, e.g. dataset.eval_batch_size=500"),
    "dataset.val_size": (
        _count_or_fraction,
        "an integer >= 0, or a fraction in (0, 1) where the dataset takes one, e.g. dataset.val_size=1000",
    ),
    "dataset.test_size": (
        _count_or_fraction,
        "an integer >= 0 or a fraction in (0, 1), e.g. dataset.test_size=0.1",
    ),
    "eval.iw_k": (_int(1), "an integer >= 1 (samples for the importance-weighted bound), e.g. eval.iw_k=100"),
    "eval.iw_chunk": (_int(1), "an integer >= 1, e.g. eval.iw_chunk=100"),
    "eval.batch_size": (_int(1), "an integer >= 1, e.g. eval.batch_size=50"),
    "eval.active_units_threshold": (_num(0), "a number >= 0, e.g. eval.active_units_threshold=0.01"),
    "eval.max_examples": (_optional(_int(1)), "an integer >= 1 or null, e.g. eval.max_examples=1000"),
    "images.n_images": (_int(1), "an integer >= 1, e.g. images.n_images=64"),
    "images.every_n_epochs": (_int(1), "an integer >= 1, e.g. images.every_n_epochs=5"),
    "checkpoint.every_n_train_steps": (
        _optional(_int(1)),
        "an integer >= 1 or null, e.g. checkpoint.every_n_train_steps=500",
    ),
    "logger.name": (_one_of("wandb", "csv", "none"), "wandb, csv or none, e.g. logger=csv"),
    "logger.mode": (
        _one_of("online", "offline", "disabled", "run", "dryrun"),
        "online, offline or disabled (or the WANDB_MODE environment variable), e.g. logger.mode=offline",
    ),
    "logger.if_unreachable": (_one_of("offline", "fail"), "offline or fail, e.g. logger.if_unreachable=fail"),
    "logger.init_timeout": (_num(1), "a number of seconds >= 1, e.g. logger.init_timeout=25"),
    "trainer.num_sanity_val_steps": (
        lambda v: _int(-1)(v),
        "an integer >= -1 (-1: every validation batch, 0: none), e.g. trainer.num_sanity_val_steps=0",
    ),
    "optimizer.lr_schedule.stages": (_int(1), "an integer >= 1, e.g. optimizer.lr_schedule.stages=8"),
    "optimizer.lr_schedule.decay_per_stage": (
        lambda v: _fraction(v, low_open=True, high_open=False),
        "a number in (0, 1], e.g. optimizer.lr_schedule.decay_per_stage=0.72",
    ),
    # kl=... options (conf/kl/): their schedules' parameters.
    "kl.beta": (_num(0), "a number >= 0; set the top-level beta instead, e.g. beta=4"),
    "kl.gamma": (_num(0), "a number >= 0, e.g. kl.gamma=1000"),
    "kl.max_capacity": (_num(0), "a number of nats >= 0 (the KL target C), e.g. kl.max_capacity=25"),
    "kl.anneal_steps": (_int(1), "an integer >= 1, e.g. kl.anneal_steps=100000"),
    "kl.warmup_steps": (_int(1), "an integer >= 1, e.g. kl.warmup_steps=2000"),
    "kl.cycles": (_int(1), "an integer >= 1, e.g. kl.cycles=4"),
    "kl.ramp_fraction": (
        lambda v: _fraction(v, low_open=True, high_open=False),
        "a number in (0, 1], e.g. kl.ramp_fraction=0.5",
    ),
    "kl.lambda_": (_num(0), "a number of nats >= 0, e.g. kl.lambda_=0.1"),
    # likelihood=... options (conf/likelihood/).
    "likelihood.sigma": (_num(0, strict=True), "a number > 0, e.g. likelihood.sigma=0.1"),
    "likelihood.min_log_scale": (_num(), "a finite number, e.g. likelihood.min_log_scale=-7"),
    # model=... options (conf/model/, conf/model/net/).
    "model.logvar_bound": (_num(0, strict=True), "a number > 0, e.g. model.logvar_bound=8"),
    "model.prior": (
        _one_of("standard_normal", "vamp", "conditional"),
        "standard_normal or vamp (cvae: conditional or standard_normal), e.g. model.prior=vamp",
    ),
    "model.vamp_components": (_int(1), "an integer >= 1, e.g. model.vamp_components=500"),
    "model.embedding_dim": (_int(1), "an integer >= 1, e.g. model.embedding_dim=16"),
    "model.num_codes": (_int(1), "an integer >= 1, e.g. model.num_codes=128"),
    "model.code_dim": (_int(1), "an integer >= 1, e.g. model.code_dim=32"),
    "model.channels": (_ints, "a non-empty list of integers >= 1, e.g. model.channels=[32,64]"),
    "model.res_blocks": (_int(0), "an integer >= 0, e.g. model.res_blocks=1"),
    "model.commitment": (_num(0), "a number >= 0, e.g. model.commitment=0.25"),
    "model.ema_decay": (
        lambda v: _fraction(v, low_open=True, high_open=True),
        "a number in (0, 1), e.g. model.ema_decay=0.99",
    ),
    "model.restart_every": (
        _int(0),
        "an integer >= 0 (0: never restart codes), e.g. model.restart_every=100",
    ),
    "model.restart_threshold": (_num(0), "a number >= 0, e.g. model.restart_threshold=1"),
    "model.quantizer": (_one_of("vq", "fsq", "rvq"), "vq, fsq or rvq, e.g. model.quantizer=fsq"),
    "model.rvq_levels": (_int(1), "an integer >= 1 (residual VQ stages), e.g. model.rvq_levels=2"),
    "model.fsq_levels": (
        _levels,
        "a non-empty list of integers >= 2, e.g. model.fsq_levels=[8,5,5,5]",
    ),
    # disentanglement methods (factor_vae, beta_tcvae, dip_vae_i, dip_vae_ii).
    "model.gamma": (_num(0), "a number >= 0, e.g. model.gamma=40"),
    "model.discriminator_layers": (_int(1), "an integer >= 1, e.g. model.discriminator_layers=6"),
    "model.discriminator_width": (_int(1), "an integer >= 1, e.g. model.discriminator_width=1000"),
    "model.discriminator_lr": (_num(0, strict=True), "a number > 0, e.g. model.discriminator_lr=1e-4"),
    "model.discriminator_betas": (_betas, "two numbers in [0, 1), e.g. model.discriminator_betas=[0.5,0.9]"),
    "model.tc_beta": (_num(0), "a number >= 0, e.g. model.tc_beta=6"),
    "model.tc_estimator": (_one_of("mws", "mss"), "mws or mss, e.g. model.tc_estimator=mss"),
    "model.dataset_size": (
        _optional(_int(1)),
        "an integer >= 1 or null (the training set's size), e.g. model.dataset_size=737280",
    ),
    "model.lambda_od": (_num(0), "a number >= 0, e.g. model.lambda_od=10"),
    "model.lambda_d": (_num(0), "a number >= 0, e.g. model.lambda_d=100"),
    "model.net.hidden": (
        _widths,
        "a list of integers >= 1 (mlp) or one integer >= 1 (conv), e.g. model.net.hidden=[400]",
    ),
    "model.net.channels": (_ints, "a non-empty list of integers >= 1, e.g. model.net.channels=[32,64,128]"),
    # dataset=... options (conf/dataset/).
    "dataset.split_seed": (_int(0), "an integer >= 0, e.g. dataset.split_seed=0"),
    "dataset.num_workers": (
        _int(0),
        "an integer >= 0 (0: load in the main process), e.g. dataset.num_workers=4",
    ),
    "dataset.memory_limit_mb": (_num(0), "a number of MiB >= 0, e.g. dataset.memory_limit_mb=4096"),
    "dataset.decode_workers": (
        _optional(_int(0)),
        "an integer >= 0 (0: decode in this process) or null (one per core), e.g. dataset.decode_workers=4",
    ),
    "dataset.image_size": (
        _optional(_size),
        "an integer >= 1, [height,width] or null, e.g. dataset.image_size=64",
    ),
    "dataset.crop": (_optional(_size), "an integer >= 1, [height,width] or null, e.g. dataset.crop=140"),
    "dataset.nuisance_seed": (
        _int(0),
        "an integer >= 0 (seeds each image's colour, noise or patch), e.g. dataset.nuisance_seed=0",
    ),
    "dataset.factor_sizes": (
        _optional(_ints),
        "seven integers >= 1 or null (the variant's grid), e.g. dataset.factor_sizes=[4,4,2,3,3,40,40]",
    ),
    # hardware=... options (conf/hardware/).
    "hardware.devices": (
        _devices,
        "an integer >= 1, or -1 for every visible device, e.g. hardware.devices=1",
    ),
    "hardware.num_nodes": (_int(1), "an integer >= 1, e.g. hardware.num_nodes=1"),
    "hardware.num_threads": (_optional(_int(1)), "an integer >= 1 or null, e.g. hardware.num_threads=1"),
    # The pictures drawn after testing, and a preset's published number (conf/experiment/repro_*.yaml).
    "pictures.n_examples": (_int(1), "an integer >= 1, e.g. pictures.n_examples=1000"),
    "pictures.tsne_points": (_int(2), "an integer >= 2, e.g. pictures.tsne_points=500"),
    "paper.value": (_num(), "a finite number in the units of paper.metric, e.g. paper.value=-86.76"),
    "paper.k": (_int(1), "an integer >= 1 (the paper's importance samples), e.g. paper.k=5000"),
    # The disentanglement study (conf/method/, experiment=disentanglement_study) and the sweep report.
    "study.index": (_int(0), "an integer >= 0 (which of study.values), e.g. study.index=0"),
    "study.values": (_numbers, "a non-empty list of numbers >= 0, e.g. study.values=[1,2,4]"),
    "study.lambda_d_values": (_numbers, "a non-empty list of numbers >= 0, e.g. study.lambda_d_values=[10]"),
    "study.anneal_steps": (_int(1), "an integer >= 1, e.g. study.anneal_steps=100000"),
    "report.inline_pictures_max_jobs": (
        _int(0),
        "an integer >= 0 (0: always link the pictures), e.g. report.inline_pictures_max_jobs=50",
    ),
}


def cross_group_problems(cfg: DictConfig) -> Iterator[str]:
    """Combinations of valid values that cannot work together (each a one-line problem and fix)."""
    trainer = cfg.get("trainer") or {}
    clip = trainer.get("gradient_clip_val")
    if clip is not None:
        yield f"trainer.gradient_clip_val={clip} is unused by vaezoo; set optimizer.clip_norm={clip} instead"
    kl_target = str((cfg.get("kl") or {}).get("_target_", ""))
    if kl_target.endswith(".CapacityAnnealing") and cfg.get("beta", 1.0) != 1.0:
        yield (
            f"kl=capacity replaces beta by kl.gamma·|KL - C(t)| (it sets beta=1), so beta={_show(cfg.beta)} "
            "would be ignored; drop the beta override, or use kl=constant to weight the KL by beta"
        )
    if (trainer.get("accumulate_grad_batches") or 1) != 1:
        yield (
            "trainer.accumulate_grad_batches is not supported (vaezoo steps the optimiser on every batch); "
            "raise dataset.batch_size instead, or spread it over devices with hardware=ddp"
        )
    likelihood = str((cfg.get("likelihood") or {}).get("_target_", ""))
    dataset = cfg.get("dataset") or {}
    name = dataset.get("name")
    # Datasets whose files may already be binary (binarized MNIST, own folders and arrays) are checked
    # against the data itself once it is opened (Likelihood.check_data), not here.
    may_be_binary = name in ("binarized_mnist", "image_folder", "arrays", "dsprites")
    if likelihood.endswith(".Bernoulli") and dataset.get("binarize") == "none" and not may_be_binary:
        yield (
            f"likelihood=bernoulli needs binary pixels but dataset.binarize=none keeps {name}'s grey "
            "levels; set dataset.binarize=dynamic (or threshold), or pick likelihood=gaussian"
        )


def study_index_problem(cfg: DictConfig) -> str | None:
    """study.index outside the method's study.values (conf/method/), as one line; else None."""
    study = cfg.get("study")
    if not isinstance(study, DictConfig) or "index" not in study or "values" not in study:
        return None
    index, values = study.get("index"), study.get("values")
    countable = isinstance(index, int) and not isinstance(index, bool) and hasattr(values, "__len__")
    if countable and not 0 <= index < len(values):
        return (
            f"study.index={index} is out of range: method={study.get('method')} has {len(values)} values "
            f"({', '.join(str(v) for v in values)}); pick study.index in 0..{len(values) - 1}"
        )
    return None


# --- keys and types ---------------------------------------------------------------------------------
def _leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                yield from _leaves(value, path)
            else:
                yield path, value


def _type_name(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list, e.g. [a,b]"
    return None


def _same_type(value: Any, default: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list):
        return isinstance(value, list)
    if isinstance(default, dict):
        return isinstance(value, dict)
    return True


def target_parameters(cfg: DictConfig, section: str) -> set[str] | None:
    """Keyword names the object built from ``section`` accepts (None: any, or unknown).

    Imports the target, so it is called only for keys that the group's YAML does not define.
    """
    node = cfg.get(section)
    try:
        if section == "trainer":
            from lightning import Trainer

            func: Any = Trainer.__init__
        elif section == "optimizer":
            from vaezoo.training.module import VAEModule

            func = VAEModule.__init__
        elif section == "model":
            from vaezoo.models import MODELS

            cls = MODELS.get(str(node.get("name")))
            if cls is None:
                return None
            func = cls.__init__
        elif isinstance(node, DictConfig) and node.get("_target_"):
            from hydra.utils import get_object

            func = get_object(str(node._target_))
        else:
            return None
    except Exception:  # a target that cannot be imported is reported when it is built
        return None
    params = inspect.signature(func).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()) and section != "dataset":
        return None
    names = {n for n in params if n not in ("self", "args", "kwargs")}
    if section == "optimizer":
        names -= {"model", "objective"}  # VAEModule's own arguments, not optimizer settings
    if section == "dataset":  # build_datamodule(in_memory, **kwargs) hands the rest to the data modules
        from vaezoo.data.datamodule import InMemoryDataModule

        names |= set(inspect.signature(InMemoryDataModule.__init__).parameters) - {"self"}
        try:
            from vaezoo.data.streaming import StreamingDataModule

            names |= set(inspect.signature(StreamingDataModule.__init__).parameters) - {"self"}
        except ImportError:
            pass
    if section == "model":
        names.add("name")  # the registry key that picks the class, as _target_ does elsewhere
    return names


def suggestion(key: str, candidates: set[str] | list[str], cutoff: float = 0.6) -> str:
    """``; did you mean trainer.max_epochs?`` for a near miss among ``candidates`` (full paths), else ''.

    Names are compared within the key's own section (``max_epoch`` with the other ``trainer`` keys),
    so the shared ``trainer.`` prefix does not make unrelated keys look alike.
    """
    parent, _, name = key.rpartition(".")
    siblings = {c.rpartition(".")[2]: c for c in candidates if c.rpartition(".")[0] == parent}
    close = difflib.get_close_matches(name, sorted(siblings), n=1, cutoff=cutoff)
    return f"; did you mean {siblings[close[0]]}?" if close else ""


def moved_key_message(key: str) -> str | None:
    """The one line for a key of an older vaezoo that now lives elsewhere (None: not a moved key)."""
    key = key.lstrip("+~")
    new = MOVED_KEYS.get(key)
    if new is None:
        return None
    return f"{key} has moved: set {new} instead (e.g. {new}=<value> on the command line)"


def unknown_key_message(key: str, cfg: DictConfig) -> str:
    """The one line for a key that is neither in the config nor accepted by its section's target."""
    moved = moved_key_message(key)
    if moved is not None:
        return moved
    section, _, rest = key.partition(".")
    known = {path for path, _ in _leaves(OmegaConf.to_container(cfg, resolve=False))}
    hint = suggestion(key, known, cutoff=0.85)
    if hint:  # a clear near miss of a key in the YAML: no need to import the target to say so
        return f"unknown key {key}{hint}"
    if rest:
        params = target_parameters(cfg, section) or set()
        known |= {f"{section}.{p}" for p in params}
        if key in known:  # a real option that the YAML leaves at its default: add it with +
            return f"{key} is not set in the config; add it with +{key}=<value>"
    hint = suggestion(key, known)
    if hint:
        return f"unknown key {key}{hint}"
    siblings = sorted(k for k in known if k.startswith(f"{section}.")) if rest else []
    listing = f" ({section} has: {', '.join(s.split('.', 1)[1] for s in siblings[:20])})" if siblings else ""
    return f"unknown key {key}{listing}; check the spelling (python -m vaezoo --cfg job shows every key)"


def validate(cfg: DictConfig, defaults: DictConfig | None = None) -> None:
    """Raise ConfigError (one line) for the first problem in a composed config; ``cfg`` is not changed.

    ``defaults`` is the same composition without key overrides: its values fix each key's type and
    the set of known keys. Without it only ranges and cross-group rules are checked.
    """
    from omegaconf.errors import OmegaConfBaseException

    study_problem = study_index_problem(cfg)
    if study_problem is not None:  # before resolving: past the list, the method's value would be null
        raise ConfigError(study_problem)
    try:
        values = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(f"cannot resolve the config: {str(err).splitlines()[0]}") from None
    assert isinstance(values, dict)
    values.pop("hydra", None)
    leaves = dict(_leaves(values))
    for path in leaves:
        moved = moved_key_message(path)
        if moved is not None:
            raise ConfigError(moved)
    if defaults is not None:
        base = OmegaConf.to_container(defaults, resolve=True)
        assert isinstance(base, dict)
        base.pop("hydra", None)
        base_leaves = dict(_leaves(base))
        for path, value in leaves.items():
            section = path.split(".", 1)[0]
            if path in base_leaves:
                default = base_leaves[path]
                if not _same_type(value, default):
                    raise ConfigError(
                        f"{path}={_show(value)} must be {_type_name(default)} (default {_show(default)})"
                    )
            elif section in ("callbacks",) or section not in base or "." not in path:
                continue  # extra callbacks are checked when built; unknown top-level sections are left alone
            elif any(p.startswith(path + ".") for p in base_leaves):
                continue
            else:
                params = target_parameters(cfg, section)
                name = path.split(".", 1)[1].split(".")[0]
                if params is not None and name not in params:
                    raise ConfigError(unknown_key_message(path, defaults))
    for path, (check, wanted) in RANGES.items():
        if path in leaves and not check(leaves[path]):
            raise ConfigError(f"{path}={_show(leaves[path])} is out of range; it must be {wanted}")
    for problem in cross_group_problems(OmegaConf.create(values)):
        raise ConfigError(problem)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# --- the command line -------------------------------------------------------------------------------
def normalize_argv(args: list[str]) -> list[str]:
    """Hydra's flags (``-m``, ``--cfg job``, ...) moved before the overrides, so they work anywhere.

    Hydra's argument parser accepts flags only before the first override; users append ``-m``.
    """
    flags: list[str] = []
    overrides: list[str] = []
    take_value = False
    for arg in args:
        if take_value:
            flags.append(arg)
            take_value = False
        elif arg.startswith("-"):
            if arg in MULTIRUN_FLAGS and any(f in MULTIRUN_FLAGS for f in flags):
                continue
            flags.append(arg)
            take_value = arg in VALUE_FLAGS or arg in ("--config-name", "-cn")
        else:
            overrides.append(arg)
    return [*flags, *overrides]


_COULD_NOT_OVERRIDE = re.compile(r"Could not (?:override|append to config)\W+'?([A-Za-z0-9_.\-/]+)'?")
_NOT_IN_STRUCT = re.compile(r"Key '([^']+)' is not in struct")


def _expand(override: Any) -> list[str]:
    """The single-value override strings of one parsed override (a sweep's values one by one)."""
    raw = override.input_line
    if not override.is_sweep_override():
        return [raw]
    head = raw.split("=", 1)[0]
    try:
        return [f"{head}={v}" for v in override.sweep_string_iterator()]
    except Exception:  # interval(...) and other sweeps that cannot be listed: the sweeper checks them
        return []


def check_command_line(args: list[str], config_dir: str, config_name: str = "config") -> DictConfig | None:
    """Compose every job a command line asks for (sweeps included) and validate each; raise ConfigError.

    Returns the first job's config (None for --help and the like). Nothing is written and nothing
    heavy is imported unless a key has to be looked up in a target.
    """
    if any(a in NO_JOB_FLAGS for a in args):
        return None
    first: DictConfig | None = None
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    overrides, skip_next = [], False
    for arg in args:
        if skip_next:
            skip_next = False
        elif arg in VALUE_FLAGS:
            skip_next = True
        elif arg in ("--config-name", "-cn") or arg.startswith(("--config-name=", "-cn=")):
            return None  # another primary config: validated when its job is built
        elif not arg.startswith("-"):
            overrides.append(arg)
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise ConfigError(f"cannot parse the overrides: {str(err).splitlines()[0]}") from None
    groups_dir = __import__("pathlib").Path(config_dir)
    fixed: list[str] = []
    group_options: list[list[str]] = []
    key_sweeps: list[list[str]] = []
    for override in parsed:
        key = override.get_key_element().lstrip("+~")
        if key.startswith("hydra") or override.is_delete():
            if not key.startswith("hydra"):
                fixed.append(override.input_line)
            continue
        expanded = _expand(override)
        if not expanded:
            continue
        is_group = (groups_dir / key.split("@")[0]).is_dir()
        if len(expanded) == 1:
            fixed.append(expanded[0])
        elif is_group:
            group_options.append(expanded)
        else:
            key_sweeps.append(expanded)
    group_fixed = [o for o in fixed if (groups_dir / o.lstrip("+~").split("=", 1)[0]).is_dir()]
    combos = list(itertools.islice(itertools.product(*group_options), MAX_COMBINATIONS))
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            for combo in combos:
                groups = [*group_fixed, *combo]
                defaults = _compose(compose, config_name, groups, None)
                firsts = [sweep[0] for sweep in key_sweeps]
                jobs = [firsts] + [
                    [*firsts[:i], value, *firsts[i + 1 :]]
                    for i, sweep in enumerate(key_sweeps)
                    for value in sweep[1:]
                ]
                for job in jobs:
                    cfg = _compose(compose, config_name, [*fixed, *combo, *job], defaults)
                    validate(cfg, defaults)
                    first = cfg if first is None else first
    finally:
        GlobalHydra.instance().clear()
    return first


def _compose(compose: Any, name: str, overrides: list[str], defaults: DictConfig | None) -> DictConfig:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return compose(name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        text = " ".join(str(err).split())
        match = _COULD_NOT_OVERRIDE.search(text) or _NOT_IN_STRUCT.search(text)
        if match and defaults is not None:
            key = match.group(1)
            if "append" in text and "already" in text:
                raise ConfigError(f"{key} is already in the config; set it without the leading +") from None
            raise ConfigError(unknown_key_message(key, defaults)) from None
        raise ConfigError(f"cannot compose the config: {text[:300]}") from None


__all__ = ["MOVED_KEYS", "RANGES", "check_command_line", "moved_key_message", "normalize_argv", "validate"]
