"""Distributed sharding of index batches, and checkpoints that a crash mid-save cannot corrupt."""

from __future__ import annotations

import pytest
import torch

from vaezoo.data.datamodule import IndexBatches
from vaezoo.training.checkpointing import AtomicCheckpointIO, remove_partial_saves


def shards(n: int, world: int, **kw) -> list[list[torch.Tensor]]:
    return [list(IndexBatches(n, 7, rank=r, world_size=world, **kw)) for r in range(world)]


@pytest.mark.parametrize("n, world", [(301, 2), (300, 2), (10, 3), (5, 8)])
def test_evaluation_shards_cover_every_example_exactly_once(n, world):
    parts = shards(n, world, shuffle=False, even=False)
    seen = torch.cat([b for part in parts for b in part]) if n >= 1 else torch.tensor([])
    assert sorted(seen.tolist()) == list(range(n))
    for r, part in enumerate(parts):
        assert len(part) == len(IndexBatches(n, 7, False, rank=r, world_size=world, even=False))


def test_training_shards_are_disjoint_equal_and_a_function_of_seed_and_epoch():
    parts = shards(301, 2, shuffle=True, seed=3)
    assert len(parts[0]) == len(parts[1])  # DDP needs the same number of steps on every process
    a, b = torch.cat(parts[0]), torch.cat(parts[1])
    assert len(a) == len(b) == 150 and not set(a.tolist()) & set(b.tolist())
    again = IndexBatches(301, 7, True, seed=3, rank=0, world_size=2)
    assert torch.equal(torch.cat(list(again)), a)
    again.set_epoch(1)
    assert not torch.equal(torch.cat(list(again)), a)


def test_resumed_sampler_skips_the_batches_already_trained_on():
    full = list(IndexBatches(100, 10, True, seed=1))
    sampler = IndexBatches(100, 10, True, seed=1)
    sampler.resume(epoch=0, served=4)
    rest = list(sampler)
    assert len(rest) == 6 and all(torch.equal(x, y) for x, y in zip(rest, full[4:], strict=True))
    assert sampler.served == 10
    assert len(list(sampler)) == 10  # the skip applies to one pass only


def test_a_crash_while_saving_never_replaces_the_last_checkpoint(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    last = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, last)

    def dies_halfway(obj, f, *args, **kwargs):
        f.write(b"partial checkpoint bytes")
        raise KeyboardInterrupt  # what a SIGINT during torch.save looks like

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2}, last)
    monkeypatch.undo()
    assert torch.load(last, weights_only=False) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # the partial temp file is gone

    io.save_checkpoint({"step": 3}, last)
    assert torch.load(last, weights_only=False) == {"step": 3}


def test_temporary_files_of_killed_saves_are_removed_on_resume(tmp_path):
    (tmp_path / "last.ckpt").write_bytes(b"good")
    (tmp_path / ".last.ckpt.abc123.tmp").write_bytes(b"half")
    assert [p.name for p in remove_partial_saves(tmp_path)] == [".last.ckpt.abc123.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
