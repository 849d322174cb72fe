"""Datasets: fixed seeded splits, binarization modes, in-memory batches, MNIST from the shared copy."""

from __future__ import annotations

import pytest
import torch

from vaezoo.data import InMemoryDataModule
from vaezoo.errors import ConfigError, DataError


def test_digits_split_is_fixed_and_disjoint():
    a = InMemoryDataModule("digits", binarize="none", val_size=150)
    b = InMemoryDataModule("digits", binarize="none", val_size=150)
    a.load(), b.load()
    assert [len(a.splits[s]) for s in ("train", "val", "test")] == [1347, 150, 300]
    assert torch.equal(a.splits["val"].x, b.splits["val"].x)
    assert a.info.levels == 17 and a.info.shape == (1, 8, 8) and a.info.num_classes == 10


def test_dynamic_binarization_draws_a_fresh_sample_each_time_but_fixes_evaluation():
    dm = InMemoryDataModule("digits", binarize="dynamic", val_size=150)
    dm.load()
    idx = torch.arange(200)
    first, second = dm.splits["train"][idx]["x"], dm.splits["train"][idx]["x"]
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(first, second)
    assert torch.equal(dm.splits["test"][idx]["x"], dm.splits["test"][idx]["x"])
    assert dm.info.binary


def test_threshold_binarization_is_deterministic():
    dm = InMemoryDataModule("digits", binarize="threshold", val_size=150)
    dm.load()
    idx = torch.arange(50)
    assert torch.equal(dm.splits["train"][idx]["x"], dm.splits["train"][idx]["x"])
    assert dm.info.binary


def test_train_loader_yields_whole_shuffled_batches_covering_the_split():
    dm = InMemoryDataModule("digits", binarize="none", batch_size=64, val_size=150)
    dm.setup()
    batches = list(dm.train_dataloader())
    assert len(batches) == len(dm.train_dataloader()) == 22
    assert batches[0]["x"].shape == (64, 1, 8, 8) and batches[0]["y"].shape == (64,)
    assert sum(len(b["x"]) for b in batches) == 1347


def test_unknown_binarize_mode_is_rejected():
    with pytest.raises(ConfigError, match="binarize"):
        InMemoryDataModule("digits", binarize="sometimes")


def test_missing_data_offline_names_the_folder_and_files(tmp_path):
    dm = InMemoryDataModule("fashion_mnist", root=tmp_path, download=False)
    with pytest.raises(DataError, match=r"FashionMNIST/raw.*train-images-idx3-ubyte.gz"):
        dm.load()


def test_mnist_loads_from_a_copy_of_the_shared_data(mnist_root):
    dm = InMemoryDataModule("mnist", root=mnist_root, binarize="dynamic", download=True)
    dm.load()
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [50_000, 10_000, 10_000]
    assert dm.info.shape == (1, 28, 28)
    counts = torch.bincount(torch.cat([dm.splits["train"].y, dm.splits["val"].y]), minlength=10)
    assert counts.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
