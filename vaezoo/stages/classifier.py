"""``python -m vaezoo.classifier dataset=<name>``: train and cache the judge classifier of a dataset.

The data is built through :mod:`vaezoo.builder` from the ``dataset`` group with grey levels
(``binarize=none``), so the classifier sees the same pixels every job of that dataset starts from.
See :mod:`vaezoo.evaluation.classifier` for what it is for and where it is cached.
"""

from __future__ import annotations

import logging
import sys
import time

import hydra
from omegaconf import DictConfig, OmegaConf

from vaezoo.errors import VaezooError
from vaezoo.paths import config_dir

log = logging.getLogger("vaezoo.stages.classifier")


def train_classifier(cfg: DictConfig) -> dict:
    """Fit, measure and cache the classifier for ``cfg.dataset``; returns its JSON record."""
    import torch

    from vaezoo.builder import build
    from vaezoo.evaluation.classifier import fit_classifier, save_classifier, train_command
    from vaezoo.training.hardware import set_threads

    set_threads(cfg.num_threads)
    dataset_cfg = OmegaConf.merge(cfg.dataset, {"binarize": "none", "in_memory": True})
    datamodule = build(dataset_cfg)
    start = time.perf_counter()
    model, figures = fit_classifier(
        datamodule,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=cfg.seed,
        channels=tuple(cfg.channels),
        hidden=cfg.hidden,
        dropout=cfg.dropout,
        binarize_share=cfg.binarize_share,
        log=log,
    )
    name = cfg.dataset.name
    record = {
        "test_accuracy": figures["test"],
        "val_accuracy": figures["val"],
        "epochs": cfg.epochs,
        "seconds": time.perf_counter() - start,
        "threads": torch.get_num_threads(),
        "command": train_command(name),
    }
    weights, record_path = save_classifier(model, name, cfg.dataset.root, record)
    log.info(
        "classifier for %s: test accuracy %.4f (val %.4f) in %.0f s; cached as %s (%s)",
        name,
        figures["test"],
        figures["val"],
        record["seconds"],
        weights,
        record_path.name,
    )
    return record


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="classifier")
def run(cfg: DictConfig) -> None:
    try:
        train_classifier(cfg)
    except VaezooError as err:
        print(f"vaezoo.stages.classifier: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    run()
