"""``python -m vaezoo.prior run=<job>``: train a learned prior over a finished VQ-VAE's codes.

Loads the VQ-VAE from the job's config.yaml and checkpoint, encodes every split to code grids,
fits a PixelCNN to them with Lightning, and writes ``<job>/prior/``: ``prior.pt`` (attached by
:func:`vaezoo.jobs.load.load_run`, after which ``model.sample()`` produces images), checkpoints,
``samples.png`` (also logged), ``results.json`` and the logger's files.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from vaezoo.errors import ConfigError
from vaezoo.paths import config_dir, quote_run_path, require_run_argument

log = logging.getLogger("vaezoo.stages.prior")


def encode_split(model: Any, datamodule: Any, split: str, batch_size: int = 500):
    import torch

    codes = []
    for batch in datamodule.loader(split, batch_size=batch_size):
        codes.append(model.codes(batch["x"].to(model.device)).cpu())
    return torch.cat(codes)


def wandb_group(job_dir: Path) -> str | None:
    """The VQ-VAE job's W&B group: its multirun folder's name, or None for a single run."""
    hydra_cfg = job_dir / ".hydra" / "hydra.yaml"
    if hydra_cfg.is_file() and str(OmegaConf.load(hydra_cfg).hydra.get("mode")) == "MULTIRUN":
        return job_dir.parent.name
    return None


def train_prior(cfg: DictConfig) -> dict[str, Any]:
    import lightning as L
    import torch
    from hydra.core.hydra_config import HydraConfig
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import WandbLogger
    from torch.utils.data import DataLoader, TensorDataset

    from vaezoo.builder import build_loggers, resolve_hardware
    from vaezoo.jobs.json_files import write_json_atomically
    from vaezoo.jobs.load import PRIOR_FILE, load_run
    from vaezoo.models.pixelcnn import PixelCNNPrior
    from vaezoo.training.pixels import image_grid, save_image_grid
    from vaezoo.training.prior_module import CodePriorModule

    job_dir = Path(cfg.run).resolve()
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    loaded = load_run(job_dir, cfg.checkpoint, cfg.data_root, with_prior=False)
    model, datamodule = loaded.model, loaded.datamodule
    if not hasattr(model, "attach_prior"):
        raise ConfigError(
            f"{job_dir} is a model={loaded.cfg.model.name} run, which has no discrete codes; "
            "a learned prior is trained for vqvae runs"
        )
    hardware = resolve_hardware(cfg.hardware)
    L.seed_everything(cfg.seed, workers=True)
    device = torch.device("cuda" if hardware["accelerator"] == "gpu" else "cpu")
    model.to(device).eval()
    datamodule.load()
    codes = {split: encode_split(model, datamodule, split) for split in ("train", "val", "test")}
    log.info("encoded %s code grids of shape %s", {k: len(v) for k, v in codes.items()}, tuple(model.grid))

    stages = model.code_stages  # residual VQ: one code per stage and position
    prior = PixelCNNPrior(model.num_codes, model.grid, stages=stages, **cfg.prior)
    module = CodePriorModule(prior, cfg.lr)
    loaders = {
        split: DataLoader(TensorDataset(c), batch_size=cfg.batch_size, shuffle=split == "train")
        for split, c in codes.items()
    }
    loggers = build_loggers(
        cfg, out_dir, f"prior:{job_dir.name}", wandb_group(job_dir), ["prior=pixelcnn"], job_type="prior"
    )
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    checkpoint = ModelCheckpoint(
        dirpath=out_dir / "checkpoints",
        filename="best-epoch{epoch:03d}",
        monitor="val/nll",
        mode="min",
        save_last=True,
        auto_insert_metric_name=False,
    )
    trainer = L.Trainer(
        **hardware,
        **OmegaConf.to_container(cfg.trainer, resolve=True),
        logger=loggers or False,
        callbacks=[checkpoint],
        default_root_dir=str(out_dir),
    )
    try:
        trainer.fit(module, loaders["train"], loaders["val"])
        best = checkpoint.best_model_path or None
        (test,) = trainer.test(module, loaders["test"], ckpt_path=best, weights_only=True)
        prior = module.prior.eval()
        torch.save(
            {
                "hparams": prior.hparams,
                "state_dict": prior.state_dict(),
                "vqvae_checkpoint": str(loaded.checkpoint),
            },
            job_dir / PRIOR_FILE,
        )
        model.to(device)
        model.attach_prior(prior)
        with torch.no_grad():
            samples = model.prior.sample(cfg.n_samples, temperature=cfg.temperature)
            images = model.decode_codes(samples).float().cpu()
        grid = image_grid(images, nrow=8)
        save_image_grid(grid, out_dir / "samples.png")
        for lg in loggers:
            if isinstance(lg, WandbLogger):
                lg.log_image(key="images/prior_samples", images=[grid], step=trainer.global_step)
        elbo_uniform, elbo_learned, n = 0.0, 0.0, 0
        with torch.no_grad():
            for batch in datamodule.loader("test", batch_size=500):
                x = batch["x"].to(device)
                terms = model.elbo_terms(x)
                log_prior = model.prior.log_prob(model.codes(x))
                elbo_uniform += float(terms.elbo.double().sum())
                elbo_learned += float((terms.log_px_z + log_prior).double().sum())
                n += len(x)
        positions = model.grid[0] * model.grid[1] * stages  # codes per grid
        report = {
            "vqvae_job": str(job_dir),
            "vqvae_checkpoint": str(loaded.checkpoint),
            "prior": prior.hparams,
            "test_code_nll_nats": float(test["test/nll"]),
            "test_bits_per_code": float(test["test/nll"]) / (positions * math.log(2)),
            "uniform_prior_nll_nats": positions * math.log(model.num_codes),
            "test_elbo_uniform_prior_nats": elbo_uniform / n,
            "test_elbo_learned_prior_nats": elbo_learned / n,
            "samples": str(out_dir / "samples.png"),
            "prior_file": str(job_dir / PRIOR_FILE),
            "epochs": trainer.current_epoch,
        }
        write_json_atomically(out_dir / "results.json", report)  # strict JSON: NaN -> null + reason
        for lg in loggers:
            if isinstance(lg, WandbLogger):
                lg.experiment.summary.update(
                    {f"test/{k}": v for k, v in report.items() if isinstance(v, float)}
                )
        log.info(
            "prior: test code NLL %.2f nats (uniform %.2f); test ELBO with learned prior %.2f nats "
            "(uniform prior %.2f); samples in %s",
            report["test_code_nll_nats"],
            report["uniform_prior_nll_nats"],
            report["test_elbo_learned_prior_nats"],
            report["test_elbo_uniform_prior_nats"],
            report["samples"],
        )
        return report
    finally:
        for lg in loggers:
            if isinstance(lg, WandbLogger):
                lg.experiment.finish()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="prior")
def run(cfg: DictConfig) -> None:
    train_prior(cfg)


def main() -> None:
    require_run_argument(
        "vaezoo.stages.prior",
        "the finished VQ-VAE job folder, e.g. python -m vaezoo.prior run=runs/multirun/<time>/<job>",
    )
    for arg in sys.argv[1:]:
        if arg.startswith("run=") and not (Path(arg[4:].strip("'\"")) / "config.yaml").is_file():
            print(
                f"vaezoo.stages.prior: {arg[4:]} is not a finished vaezoo job folder (no config.yaml)",
                file=sys.stderr,
            )
            sys.exit(2)
    from vaezoo.jobs.safety import check_run_argument

    check_run_argument("vaezoo.stages.prior", sys.argv[1:])  # before Hydra writes into the job folder
    sys.argv[1:] = quote_run_path(sys.argv[1:])
    from vaezoo.stages.signals import run_stopping_on_signals

    run_stopping_on_signals("vaezoo.stages.prior", "the prior's training", run)


if __name__ == "__main__":
    main()
