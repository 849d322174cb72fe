"""dataset.in_memory=false: worker-streamed batches with the in-memory module's splits and semantics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY
from vaezoo.data import InMemoryDataModule, build_datamodule
from vaezoo.data.streaming import StreamingDataModule, collate, to_model_input
from vaezoo.errors import ConfigError
from vaezoo.stages.train import train


def test_streamed_splits_match_the_in_memory_ones(mnist_root):
    streamed = build_datamodule(
        in_memory=False, name="mnist", root=mnist_root, binarize="threshold", num_workers=0
    )
    held = InMemoryDataModule("mnist", root=mnist_root, binarize="threshold")
    streamed.load(), held.load()
    assert isinstance(streamed, StreamingDataModule)
    assert [len(streamed.splits[s]) for s in ("train", "val", "test")] == [50_000, 10_000, 10_000]
    assert streamed.info == held.info
    idx = torch.tensor([0, 1, 2, 777, 9_999])
    for split in ("train", "val", "test"):
        torch.testing.assert_close(streamed.splits[split][idx]["x"], held.splits[split][idx]["x"])
        torch.testing.assert_close(streamed.splits[split][idx]["y"], held.splits[split][idx]["y"])


def test_dynamic_binarization_is_fresh_for_training_and_fixed_for_evaluation(mnist_root):
    dm = StreamingDataModule("mnist", root=mnist_root, binarize="dynamic", num_workers=0)
    dm.load()
    assert dm.info.binary
    items = [dm.splits["train"].item(i) for i in range(64)]
    a = to_model_input(collate(items), dm.splits["train"].levels, dm.splits["train"].dynamic_binarize)["x"]
    b = to_model_input(collate(items), dm.splits["train"].levels, dm.splits["train"].dynamic_binarize)["x"]
    assert set(a.unique().tolist()) == {0.0, 1.0} and not torch.equal(a, b)
    idx = torch.arange(64)
    first, second = dm.splits["test"][idx]["x"], dm.splits["test"][idx]["x"]
    assert torch.equal(first, second) and set(first.unique().tolist()) == {0.0, 1.0}


def test_training_with_worker_processes_end_to_end(compose_cfg, mnist_root):
    cfg = compose_cfg(
        *TINY,
        "dataset=mnist",
        f"paths.data={mnist_root}",
        "dataset.in_memory=false",
        "+dataset.num_workers=1",
        "+trainer.limit_train_batches=4",
        "+trainer.limit_val_batches=2",
        "+trainer.limit_test_batches=2",
        "trainer.max_epochs=1",
        "logger=csv",
    )
    report = train(cfg)
    saved = json.loads((Path(report["job_dir"]) / "results.json").read_text())
    assert saved["steps"] == 4 and saved["test"]["n_examples"] == 10_000
    assert saved["test"]["elbo_nats"] < 0 and saved["test"]["iw_bound_nats"] is not None
    assert (Path(report["job_dir"]) / "images" / "reconstructions.png").is_file()


def test_small_datasets_are_not_streamed():
    with pytest.raises(ConfigError, match="in_memory"):
        build_datamodule(in_memory=False, name="digits")
    with pytest.raises(ConfigError, match="in_memory='sometimes'"):
        build_datamodule(in_memory="sometimes", name="digits")
