"""A small convolutional classifier per labelled dataset: the judge of samples and of control.

Trained once by ``python -m vaezoo.classifier dataset=<name>`` and cached in the data root as
``<root>/classifiers/<dataset>.pt`` (a plain state_dict, loadable with ``weights_only=True``) beside
``<dataset>.json`` (its architecture, test accuracy and the command that trained it). The Fréchet
distance compares its penultimate features of samples and of test images; the conditional accuracy
asks it which class each sample shows.

It is trained on grey-level images and, for half of every batch, on a Bernoulli draw of them, so it
reads both the binarized test images and the grey mean images a Bernoulli decoder draws.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vaezoo.errors import ConfigError
from vaezoo.jobs.safety import load_checkpoint

CLASSIFIER_DIR = "classifiers"


def train_command(dataset: str) -> str:
    """The documented command that trains (and caches) the classifier for ``dataset``."""
    return f"python -m vaezoo.classifier dataset={dataset}"


class SmallCNN(nn.Module):
    """Two conv + batch-norm + max-pool blocks, a dropout-regularised hidden layer, a linear head."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        num_classes: int,
        channels: tuple[int, int] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        c, h, w = shape
        c1, c2 = channels
        self.hparams = {
            "shape": list(shape),
            "num_classes": num_classes,
            "channels": [c1, c2],
            "hidden": hidden,
            "dropout": dropout,
        }
        self.body = nn.Sequential(
            nn.Conv2d(c, c1, 3, padding=1),
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(c2 * (h // 4) * (w // 4), hidden),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits [B, num_classes] for images [B, C, H, W] in [0, 1]."""
        return self.head(self.body(x))

    @torch.no_grad()
    def features(self, x: Tensor, batch_size: int = 1000) -> Tensor:
        """Penultimate features [B, hidden] (what the Fréchet distance compares), in eval mode."""
        self.eval()
        return torch.cat([self.body(part) for part in x.split(batch_size)])

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 1000) -> Tensor:
        """Predicted labels [B] (int64), in eval mode."""
        self.eval()
        return torch.cat([self(part).argmax(1) for part in x.split(batch_size)])


def classifier_paths(dataset: str, data_root: str | Path) -> tuple[Path, Path]:
    """(weights, record) of the cached classifier for ``dataset`` under ``data_root``."""
    folder = Path(data_root).expanduser() / CLASSIFIER_DIR
    return folder / f"{dataset}.pt", folder / f"{dataset}.json"


def classifier_missing(dataset: str, data_root: str | Path | None) -> str | None:
    """Why no cached classifier for ``dataset`` can be loaded (naming the command), or None."""
    weights, record_path = classifier_paths(dataset, data_root or "data")
    if weights.is_file() and record_path.is_file():
        return None
    return (
        f"no classifier for {dataset} in {weights.parent}; train it once with "
        f"`{train_command(dataset)} paths.data={data_root}`"
    )


def load_classifier(dataset: str, data_root: str | Path) -> SmallCNN:
    """The cached classifier for ``dataset``, in eval mode; ConfigError naming the command when missing."""
    missing = classifier_missing(dataset, data_root)
    if missing:
        raise ConfigError(missing)
    weights, record_path = classifier_paths(dataset, data_root)
    record = json.loads(record_path.read_text())
    hp = record["architecture"]
    model = SmallCNN(
        tuple(hp["shape"]), hp["num_classes"], tuple(hp["channels"]), hp["hidden"], hp["dropout"]
    )
    state = load_checkpoint(weights, fallback=f"delete it and train it again with `{train_command(dataset)}`")
    model.load_state_dict(state)
    return model.eval()


def classifier_record(dataset: str, data_root: str | Path) -> dict[str, Any]:
    """The cached classifier's record (architecture, test accuracy, command)."""
    load_classifier(dataset, data_root)  # the same one-line error when it is missing
    return json.loads(classifier_paths(dataset, data_root)[1].read_text())


def split_tensors(datamodule: Any, split: str) -> tuple[Tensor, Tensor]:
    """All images [N, C, H, W] in [0, 1] and labels [N] of one split, on the CPU."""
    xs, ys = [], []
    for batch in datamodule.loader(split, batch_size=1000):
        if "y" not in batch:
            raise ConfigError(f"dataset {datamodule.info.name} has no labels; a classifier needs them")
        xs.append(batch["x"].cpu())
        ys.append(batch["y"].cpu())
    return torch.cat(xs), torch.cat(ys).long()


@torch.no_grad()
def accuracy(model: SmallCNN, x: Tensor, y: Tensor) -> float:
    return float((model.predict(x) == y).double().mean())


def fit_classifier(
    datamodule: Any,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    channels: tuple[int, int] = (32, 64),
    hidden: int = 128,
    dropout: float = 0.25,
    binarize_share: float = 0.5,
    log: Any = None,
) -> tuple[SmallCNN, dict[str, float]]:
    """Train a SmallCNN on the data module's train split (Adam with a one-cycle rate, peak 3 x ``lr``).

    ``binarize_share`` of each batch is replaced by a Bernoulli draw of itself, so the classifier
    also reads binarized images. Returns the model (eval mode) and its train / val / test accuracy.
    """
    torch.manual_seed(seed)
    datamodule.load()
    info = datamodule.info
    if not info.has_labels or info.num_classes is None:
        raise ConfigError(f"dataset {info.name} has no class labels; a classifier needs them")
    train_x, train_y = split_tensors(datamodule, "train")
    if train_y.dim() != 1:
        raise ConfigError(f"dataset {info.name} has multi-label attributes; the classifier needs one class")
    model = SmallCNN(info.shape, info.num_classes, channels, hidden, dropout)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = (len(train_x) + batch_size - 1) // batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, lr * 3, total_steps=epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=generator)
        total = 0.0
        for idx in order.split(batch_size):
            x, y = train_x[idx], train_y[idx]
            flip = torch.rand(len(x), generator=generator) < binarize_share
            if flip.any():
                x = x.clone()
                x[flip] = (torch.rand(x[flip].shape, generator=generator) < x[flip]).float()
            loss = loss_fn(model(x), y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(x)
        if log is not None:
            log.info("classifier epoch %d: train loss %.4f", epoch + 1, total / len(train_x))
    model.eval()
    figures = {split: accuracy(model, *split_tensors(datamodule, split)) for split in ("val", "test")}
    return model, figures


def save_classifier(
    model: SmallCNN, dataset: str, data_root: str | Path, record: dict[str, Any]
) -> tuple[Path, Path]:
    """Write the state_dict and the JSON record (architecture + ``record``) into the data root."""
    from vaezoo.jobs.json_files import write_json_atomically

    weights, record_path = classifier_paths(dataset, data_root)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_name(f".{weights.name}.tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(weights)
    write_json_atomically(record_path, {"dataset": dataset, "architecture": model.hparams, **record})
    return weights, record_path
