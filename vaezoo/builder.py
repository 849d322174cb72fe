"""The one builder: a composed config in, the objects of a job out (data, likelihood, model, objective,
module, loggers, trainer, hardware).

Every entry point (train, evaluate, prior, bench) and :func:`vaezoo.jobs.load.load_run` build through
these functions, so a config means the same objects everywhere. Heavy imports live inside functions
so ``python -m vaezoo --help`` stays fast.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vaezoo.errors import ConfigError, VaezooError
from vaezoo.training.wandb_run import wandb_mode

log = logging.getLogger("vaezoo")


def build(node: DictConfig, **objects: Any) -> Any:
    """hydra.utils.instantiate, but a VaezooError raised by the target surfaces as itself (one line).

    ``objects`` are passed to the target as they are (things a config cannot hold, such as a data source).
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, **objects)
    except InstantiationException as err:
        if isinstance(err.__cause__, VaezooError):
            raise err.__cause__ from None
        raise


def resolve_hardware(hw: DictConfig) -> dict[str, Any]:
    """Trainer keyword arguments for the ``hardware`` group; says which device it picked.

    Also applies the group's process-wide settings (CPU threads, flush-denormal, TF32 matmuls), so
    it runs before any data is loaded.
    """
    import torch

    from vaezoo.training.hardware import apply_process_settings

    apply_process_settings(hw)

    accelerator = hw.accelerator
    has_cuda = torch.cuda.is_available()
    if accelerator == "auto":
        accelerator = "gpu" if has_cuda else "cpu"
        log.info(
            "hardware=auto: training on %s",
            "CUDA GPU " + torch.cuda.get_device_name(0) if has_cuda else "the CPU (no CUDA device visible)",
        )
    if accelerator == "gpu" and not has_cuda:
        raise ConfigError(
            "hardware asks for a GPU but no CUDA device is visible; use hardware=cpu or hardware=auto"
        )
    precision = hw.precision
    if precision is None:
        precision = "bf16-mixed" if accelerator == "gpu" and torch.cuda.is_bf16_supported() else "32-true"
    if accelerator == "gpu":
        torch.set_float32_matmul_precision("high")
    return {
        "accelerator": accelerator,
        "devices": hw.devices,
        "num_nodes": hw.get("num_nodes", 1),
        "precision": precision,
        "strategy": resolve_strategy(hw),
    }


def resolve_strategy(hw: DictConfig) -> Any:
    """The Trainer's ``strategy``: the preset's name, or a DDPStrategy when a process-group backend is set.

    ``ddp`` starts the other local processes by rerunning the command line (Lightning's Hydra support
    adds ``hydra.run.dir``), or joins processes that SLURM or torchrun started. A local multirun cannot
    be rerun that way (every process would run the whole sweep), so that combination is refused.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    strategy = hw.strategy
    backend = hw.get("process_group_backend")
    if backend is not None:
        from lightning.pytorch.strategies import DDPStrategy

        if strategy != "ddp":
            raise ConfigError(f"hardware.process_group_backend needs hardware.strategy=ddp, not {strategy}")
        strategy_obj: Any = DDPStrategy(process_group_backend=backend)
    else:
        strategy_obj = strategy
    relaunches = str(strategy).startswith("ddp") and strategy not in ("ddp_spawn", "ddp_fork", "ddp_notebook")
    several = hw.devices not in (1, "1") or hw.get("num_nodes", 1) > 1
    external = SLURMEnvironment.detect() or TorchElasticEnvironment.detect()
    if hw.get("num_nodes", 1) > 1 and not external and "NODE_RANK" not in os.environ:
        raise ConfigError(
            f"hardware.num_nodes={hw.num_nodes} needs the processes on every node started by SLURM "
            "(srun, or hydra/launcher=slurm) or torchrun (or NODE_RANK and MASTER_ADDR set on each node)"
        )
    if relaunches and several and not external and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ConfigError(
            f"hardware.strategy={strategy} restarts the command line in each process, which a local multirun "
            "(-m) cannot do: run each job without -m (one after another), or sweep on a cluster with "
            "hydra/launcher=slurm, where srun starts the processes"
        )
    return strategy_obj


def build_loggers(
    cfg: DictConfig,
    job_dir: Path,
    run_name: str,
    group: str | None,
    tags: list[str],
    run_id: str | None = None,
    job_type: str = "train",
) -> list:
    """CSV (+ W&B) loggers; ``run_id`` fixes the W&B run id so a resumed job continues the same run;
    ``job_type`` (train, evaluate, prior) groups the runs of one stage in W&B's dashboards."""
    from lightning.pytorch.loggers import CSVLogger, WandbLogger

    kind = cfg.logger.name
    if kind == "none":
        return []
    loggers: list = [CSVLogger(save_dir=str(job_dir), name="", version="")]
    if kind == "wandb":
        mode = wandb_mode(cfg.logger)
        folder = job_dir / "wandb"
        writable = folder if folder.exists() else job_dir
        if not os.access(writable, os.W_OK):
            raise ConfigError(
                f"cannot write W&B files to {folder} (permission denied); make it writable, or use logger=csv"
            )

        def wandb_logger(mode: str) -> Any:
            import wandb

            logger = WandbLogger(
                project=cfg.logger.project,
                entity=cfg.logger.entity,
                name=run_name,
                group=cfg.logger.group or group,
                tags=[*tags, *cfg.logger.tags],
                save_dir=str(job_dir),
                mode=mode,
                id=run_id,
                resume="allow" if run_id else None,
                job_type=job_type,
                log_model=bool(cfg.logger.get("log_checkpoints", False)),
                settings=wandb.Settings(init_timeout=float(cfg.logger.get("init_timeout", 25))),
            )
            # Lightning always passes anonymous=None, which W&B answers on every run with a warning
            # that the setting has no effect; vaezoo never sets it.
            logger._wandb_init.pop("anonymous", None)
            return logger

        logger = wandb_logger(mode)
        if mode == "online":
            try:
                logger.experiment  # noqa: B018 (starts the run: the moment W&B reaches its server, or not)
            except Exception as err:
                reason = " ".join(str(err).split())[:160]
                if cfg.logger.get("if_unreachable", "offline") == "fail":
                    raise ConfigError(
                        f"W&B could not start an online run ({type(err).__name__}: {reason}); check the "
                        "network and `wandb login`, or use logger.mode=offline"
                    ) from None
                log.warning(
                    "W&B online run could not start (%s); logging offline instead: upload later with "
                    "`wandb sync %s` (logger.if_unreachable=fail makes this an error)",
                    type(err).__name__,
                    job_dir / "wandb",
                )
                import wandb

                wandb.teardown()  # the failed online attempt still holds the run id in W&B's service
                logger = wandb_logger("offline")
        loggers.append(logger)
    elif kind != "csv":
        raise ConfigError(f"logger.name={kind!r} must be wandb, csv or none")
    return loggers


def extra_callbacks(cfg: DictConfig) -> list:
    """Lightning callbacks added from the config: ``+callbacks.<name>._target_=<class> ...``."""
    from hydra.errors import InstantiationException

    callbacks = []
    for name, spec in (cfg.get("callbacks") or {}).items():
        try:
            callbacks.append(build(spec))
        except InstantiationException as err:
            first = " ".join(str(err).split())[:200]
            raise ConfigError(
                f"callbacks.{name} could not be built ({first}); check its _target_ and arguments, "
                f"or remove it with ~callbacks.{name}"
            ) from None
    return callbacks


def model_params(model_cfg: DictConfig) -> dict[str, Any]:
    """The model constructor's keyword arguments: the ``model`` node but its ``name``.

    ``name`` picks the registered class (as ``_target_`` does for other groups); every other key of
    the node is an argument, since the run settings a model needs (beta, optimizer.clip_norm) are set
    by its option file in their own sections (conf/model/*.yaml).
    """
    params = OmegaConf.to_container(model_cfg, resolve=True)
    assert isinstance(params, dict)
    return {k: v for k, v in params.items() if k != "name"}


def build_data_and_likelihood(cfg: DictConfig, source: Any = None) -> tuple[Any, Any]:
    """The data module and the likelihood, checked against each other (e.g. Bernoulli needs binary data).

    ``source`` (anything with ``load() -> Splits``) replaces the named dataset's loader: how a caller
    outside the product (the benchmark's synthetic input) feeds its own data without registering it.
    """
    datamodule = build(cfg.dataset, **({"source": source} if source is not None else {}))
    return datamodule, build_likelihood(cfg, datamodule.info)


def build_likelihood(cfg: DictConfig, data_info: Any) -> Any:
    """The likelihood, checked against the data it will model (e.g. Bernoulli needs binary pixels)."""
    likelihood = build(cfg.likelihood)
    likelihood.check_data(data_info, cfg.dataset.name)
    return likelihood


def build_model_for(cfg: DictConfig, data_info: Any, likelihood: Any) -> Any:
    """The registered model named by ``cfg.model.name``, sized for the data."""
    from vaezoo.models import build_model

    return build_model(cfg.model.name, model_params(cfg.model), data_info, likelihood)


#: The fewest test examples the post-fit evaluation can use (active units need a variance over examples).
MIN_TEST_EXAMPLES = 2


def check_split_sizes(datamodule: Any, dataset_cfg: DictConfig) -> None:
    """Refuse, before training, splits too small for training or for the test report that ends it."""
    from vaezoo.errors import DataError

    splits = getattr(datamodule, "splits", None) or {}
    sizes = {name: len(split) for name, split in splits.items()}
    name = dataset_cfg.get("name")
    fix = (
        "set dataset.test_size to a larger count"
        if "test_size" in dataset_cfg
        else "use the full dataset (drop the option that shrinks it)"
    )
    if sizes.get("train", 1) < 1:
        raise DataError(f"dataset {name} has no training examples; give it more examples")
    if sizes.get("test", MIN_TEST_EXAMPLES) < MIN_TEST_EXAMPLES:
        raise DataError(
            f"dataset {name} has {sizes['test']} test example(s) ({sizes.get('train')} / "
            f"{sizes.get('val')} / {sizes['test']} train / val / test); the test report needs at least "
            f"{MIN_TEST_EXAMPLES}: give it more examples or {fix}"
        )


def build_module(cfg: DictConfig, source: Any = None):
    """Data, likelihood, KL regulariser, model and objective from the config, all checked before training.

    Returns (datamodule, module). Every input problem raises a one-line VaezooError here. ``source``:
    see :func:`build_data_and_likelihood`.
    """
    import lightning as L

    from vaezoo.config.schema import validate
    from vaezoo.objective import Objective
    from vaezoo.training import VAEModule

    validate(cfg)  # ranges and cross-group rules (python -m vaezoo checked keys and types before Hydra ran)
    datamodule, likelihood = build_data_and_likelihood(cfg, source)
    check_split_sizes(datamodule, cfg.dataset)
    kl = build(cfg.kl)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model = build_model_for(cfg, datamodule.info, likelihood)
    objective = Objective(kl=kl, k=cfg.objective.k)
    objective.check_model(model, cfg.model.name)
    module = VAEModule(model, objective, **cfg.optimizer)
    log.info("model %s: %.2fM parameters", cfg.model.name, sum(p.numel() for p in model.parameters()) / 1e6)
    return datamodule, module


def build_trainer(
    cfg: DictConfig,
    job_dir: Path,
    hardware: dict[str, Any],
    datamodule: Any,
    loggers: list,
    more_callbacks: tuple = (),
    job_id: str | None = None,
    **trainer_overrides: Any,
):
    """The Lightning Trainer every vaezoo job uses (the benchmark times this same one).

    Returns (trainer, checkpoint): the checkpoint callback keeps ``last.ckpt`` and the best by val ELBO.
    Every checkpoint records ``job_id`` (run.json's id), so a resume can tell its own checkpoints from
    another job's; the paths they store are read back inside ``job_dir``
    (:mod:`vaezoo.training.job_checkpoint`).
    """
    import lightning as L

    from vaezoo.training.callbacks import ImageGrids
    from vaezoo.training.checkpointing import AtomicCheckpointIO, RandomState
    from vaezoo.training.hardware import hardware_callbacks
    from vaezoo.training.job_checkpoint import JobCheckpoint

    checkpoint = JobCheckpoint(
        dirpath=job_dir / "checkpoints",
        filename="best-epoch{epoch:03d}",
        monitor="val/elbo",
        mode="max",
        save_last=True,
        auto_insert_metric_name=False,
        enable_version_counter=False,  # one last.ckpt, written by this and the every-n-steps checkpoint
        job_id=job_id,
    )
    images = ImageGrids(job_dir / "images", cfg.images.n_images, cfg.images.every_n_epochs)
    callbacks = [checkpoint, images, RandomState(), *extra_callbacks(cfg)]
    callbacks += hardware_callbacks(cfg.hardware, hardware["accelerator"])
    every_n_steps = cfg.get("checkpoint", {}).get("every_n_train_steps")
    if every_n_steps:  # last.ckpt also mid-epoch, so a killed job loses at most that many steps
        callbacks.append(
            JobCheckpoint(
                dirpath=job_dir / "checkpoints",
                save_top_k=0,
                save_last=True,
                every_n_train_steps=every_n_steps,
                enable_version_counter=False,
                job_id=job_id,
            )
        )
    callbacks += list(more_callbacks)
    trainer_kwargs = {**OmegaConf.to_container(cfg.trainer, resolve=True), **trainer_overrides}
    trainer = L.Trainer(
        **hardware,
        **trainer_kwargs,
        logger=loggers or False,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        # The in-memory data module shards its own batches, exactly once per evaluation example.
        use_distributed_sampler=not getattr(datamodule, "shards_itself", False),
        default_root_dir=str(job_dir),
    )
    return trainer, checkpoint
