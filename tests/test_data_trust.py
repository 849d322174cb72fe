"""Data and checkpoint files are read as data: nothing in them runs, and each image file counts once.

The refusals are checked against files really written by this torch and NumPy (torch's wording
changes between versions, so a message matched against an old wording would misreport a checkpoint
that carries code as corrupt); the bad-input catalogue (tests/cases_data.py) runs them through the CLI.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.bad_input_case import MARKER
from tests.cases_data import ExecPayload, Payload
from tests.conftest import run_cli
from tests.standins import class_images, write_cifar10, write_folder
from vaezoo.data import build_datamodule
from vaezoo.data.safe_load import CARRIES_CODE, CarriesObjects, load_plain_pickle
from vaezoo.errors import ConfigError, DataError, UnsafeInputError
from vaezoo.jobs.safety import load_checkpoint

SPLITS = ("train", "val", "test")


# --- CIFAR-10's pickled batches -----------------------------------------------------------------------
class Python2Array:
    """Pickles an array as NumPy 1 under Python 2 wrote CIFAR-10's official batches: the global
    ``numpy.core.multiarray._reconstruct`` and the pixels as a (latin-1) string, not bytes."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __reduce__(self):
        reconstruct = np.ndarray.__reduce__(self.array)[0]
        pixels = self.array.tobytes().decode("latin1")
        return (reconstruct, (np.ndarray, (0,), "b"), (1, self.array.shape, self.array.dtype, False, pixels))


def official_style_batch(array: np.ndarray, labels: list[int]) -> bytes:
    raw = pickle.dumps({"batch_label": "x", "data": Python2Array(array), "labels": labels}, protocol=2)
    return raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")  # NumPy 1's module name


def test_the_unpickler_reads_official_style_batches_and_numpy2_pickles():
    array = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    old = load_plain_pickle(io.BytesIO(official_style_batch(array, [3, 7])))
    assert np.array_equal(old["data"], array) and old["labels"] == [3, 7]
    new = load_plain_pickle(io.BytesIO(pickle.dumps({"data": array, "labels": [1, 2]})))
    assert np.array_equal(new["data"], array) and new["data"].dtype == np.uint8


@pytest.mark.parametrize("gadget", [Payload, ExecPayload], ids=["os.system", "exec"])
def test_the_unpickler_refuses_every_other_global_before_calling_it(tmp_path, gadget):
    marker = tmp_path / MARKER
    with pytest.raises(CarriesObjects, match=r"system|exec"):
        load_plain_pickle(io.BytesIO(pickle.dumps({"data": gadget(marker)})))
    assert not marker.exists()
    pickle.loads(pickle.dumps(gadget(marker)))  # the control: a full unpickle runs it
    assert marker.exists()


def test_a_cifar10_folder_with_an_official_style_batch_loads_and_a_crafted_one_is_refused(tmp_path):
    write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    array = np.random.default_rng(1).integers(0, 256, (8, 3072), dtype=np.uint8)
    (folder / "test_batch").write_bytes(official_style_batch(array, list(range(8))))
    dm = build_datamodule(in_memory=True, name="cifar10", root=tmp_path, val_size=8, download=False)
    dm.load()
    assert torch.equal(dm.splits["test"].x, torch.from_numpy(array.reshape(-1, 3, 32, 32)))
    assert dm.splits["test"].y.tolist() == list(range(8))

    (folder / "data_batch_4").write_bytes(pickle.dumps({"data": Payload(tmp_path / MARKER), "labels": [0]}))
    with pytest.raises(UnsafeInputError, match=f"data_batch_4: {CARRIES_CODE} \\(it calls posix.system"):
        build_datamodule(in_memory=True, name="cifar10", root=tmp_path, val_size=8, download=False).load()
    assert not (tmp_path / MARKER).exists()
    (folder / "data_batch_4").write_bytes(pickle.dumps({"data": np.zeros((4, 10), np.uint8), "labels": []}))
    with pytest.raises(DataError, match=r"data_batch_4 is not a CIFAR-10 batch \(data \(4, 10\)\)"):
        build_datamodule(in_memory=True, name="cifar10", root=tmp_path, val_size=8, download=False).load()


# --- torch files: checkpoints and .pt arrays ------------------------------------------------------------
@pytest.fixture
def checkpoint(tmp_path: Path) -> dict:
    return {"state_dict": {"model.w": torch.arange(4.0)}, "epoch": 3, "callbacks": {}}


def test_a_plain_checkpoint_loads(tmp_path, checkpoint):
    torch.save(checkpoint, tmp_path / "last.ckpt")
    assert torch.equal(load_checkpoint(tmp_path / "last.ckpt")["state_dict"]["model.w"], torch.arange(4.0))


@pytest.mark.parametrize(
    ("write", "culprit"),
    [
        (lambda state, path: torch.save(state, path), "posix.system"),
        (lambda state, path: torch.save(state, path, _use_new_zipfile_serialization=False), "posix.system"),
        (lambda state, path: path.write_bytes(pickle.dumps(state)), "posix.system, in a plain pickle"),
    ],
    ids=["zip", "legacy", "raw-pickle"],
)
def test_a_checkpoint_that_calls_code_is_refused_in_our_words(tmp_path, checkpoint, write, culprit):
    checkpoint["callbacks"]["evil"] = Payload(tmp_path / MARKER)
    write(checkpoint, tmp_path / "last.ckpt")
    with pytest.raises(UnsafeInputError) as refused:
        load_checkpoint(tmp_path / "last.ckpt")
    text = str(refused.value)
    assert CARRIES_CODE in text and culprit in text and "load only checkpoints written by vaezoo" in text
    assert "weights_only" not in text and "corrupt" not in text
    assert not (tmp_path / MARKER).exists()


def test_a_checkpoint_with_foreign_objects_is_refused_and_damaged_ones_are_corrupt(tmp_path, checkpoint):
    checkpoint["callbacks"]["rng"] = np.zeros(3)  # a NumPy array: a class torch's weights-only load refuses
    torch.save(checkpoint, tmp_path / "numpy.ckpt")
    with pytest.raises(UnsafeInputError, match=f"{CARRIES_CODE} \\(it calls numpy._core.multiarray"):
        load_checkpoint(tmp_path / "numpy.ckpt")
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(100)}}, good)
    torch.save(
        {"state_dict": {"w": torch.zeros(100)}},
        tmp_path / "legacy.ckpt",
        _use_new_zipfile_serialization=False,
    )
    damaged = {
        "truncated": good.read_bytes()[:200],
        "legacy-truncated-a": (tmp_path / "legacy.ckpt").read_bytes()[:30],
        "legacy-truncated-b": (tmp_path / "legacy.ckpt").read_bytes()[:200],
        "empty": b"",
        "text": b"hello, not a checkpoint",
        "zeros": b"\x00not a checkpoint at all" * 10,  # torch: "Unsupported operand 0"
        "plain-pickle-of-numbers": pickle.dumps({"w": [1.0, 2.0]}),  # not a torch file, names no code
    }
    for name, content in damaged.items():
        path = tmp_path / f"{name}.ckpt"
        path.write_bytes(content)
        with pytest.raises(ConfigError, match="is corrupt or truncated") as err:
            load_checkpoint(path, fallback="use best")
        assert str(err.value).endswith("use best") and "weights_only" not in str(err.value), name


def test_array_files_that_carry_code_are_refused_and_plain_ones_load(tmp_path):
    marker = tmp_path / MARKER
    torch.save({"images": torch.zeros(10, 8, 8, dtype=torch.uint8), "x": Payload(marker)}, tmp_path / "a.pt")
    np.save(tmp_path / "b.npy", np.array([Payload(marker)], dtype=object), allow_pickle=True)
    (tmp_path / "c.npy").write_bytes(pickle.dumps(Payload(marker)))
    np.savez(
        tmp_path / "d.npz", images=np.zeros((10, 8, 8), np.uint8), labels=np.array([Payload(marker)] * 10)
    )
    for name in ("a.pt", "b.npy", "c.npy", "d.npz"):
        with pytest.raises(DataError) as refused:
            build_datamodule(name="arrays", path=str(tmp_path / name))
        text = str(refused.value)
        assert f"refusing {tmp_path / name}: {CARRIES_CODE}" in text and "weights_only" not in text, text
        assert "allow_pickle" not in text, text
    assert not marker.exists()
    torch.save({"images": torch.zeros(10, 8, 8, dtype=torch.uint8)}, tmp_path / "plain.pt")
    plain = build_datamodule(name="arrays", path=str(tmp_path / "plain.pt"), val_size=2, test_size=2)
    assert plain.info.shape == (1, 8, 8)


# --- image folders: every file once ----------------------------------------------------------------------
@pytest.fixture
def pets(tmp_path: Path) -> Path:
    """60 PNGs: cats/0000..0029, dogs/0030..0059."""
    images, labels = class_images(30, size=8)
    return write_folder(tmp_path / "pets", images, labels)


def listed(folder: Path, **options) -> dict[str, list[str]]:
    """Real paths of the images in each split."""
    datamodule = build_datamodule(in_memory=True, name="image_folder", path=str(folder), **options)
    return {s: [os.path.realpath(p) for p in datamodule.source.paths[s]] for s in SPLITS}


def test_a_symlink_loop_lists_each_image_once_and_says_how_many_were_skipped(pets, caplog):
    before = listed(pets)
    os.symlink("../cats", pets / "cats" / "loop")  # a sub-folder that links to its parent
    with caplog.at_level(logging.WARNING, logger="vaezoo.data.image_folder"):
        after = listed(pets)
    assert after == before  # the same 60 images, the same split, as if the link were not there
    assert sum(len(v) for v in after.values()) == 60 and len({p for v in after.values() for p in v}) == 60
    (line,) = [r.getMessage() for r in caplog.records if "symbolic link" in r.getMessage()]
    assert f"image_folder: {pets}: skipped 30 image file(s)" in line
    assert f"(first: {pets / 'cats' / 'loop'} -> {os.path.realpath(pets / 'cats')})" in line
    assert "using the 60 unique image(s), each once; remove the link" in line


def test_links_to_files_or_folders_already_listed_are_skipped(pets, caplog):
    before = listed(pets)
    os.symlink("0000.png", pets / "cats" / "0000-again.png")  # a duplicate file
    os.symlink("..", pets / "dogs" / "up")  # up to the top folder: cats would become dogs too
    with caplog.at_level(logging.WARNING, logger="vaezoo.data.image_folder"):
        after = listed(pets)
    assert after == before
    (line,) = [r.getMessage() for r in caplog.records if "symbolic link" in r.getMessage()]
    assert "skipped 62 image file(s)" in line  # the duplicate, and the 61 files the link leads back to


def test_images_linked_into_two_splits_are_used_once(tmp_path):
    images, labels = class_images(10, size=8)
    write_folder(tmp_path / "pets" / "train", images, labels)
    write_folder(tmp_path / "pets" / "test", images[[0, 10]] // 2, labels[[0, 10]])  # test/{cats,dogs}/
    os.symlink("../../train/dogs/0015.png", tmp_path / "pets" / "test" / "dogs" / "extra.png")
    found = listed(tmp_path / "pets", val_size=2)
    assert not set(found["test"]) & set(found["train"]) and not set(found["test"]) & set(found["val"])
    assert len(found["test"]) == 2 and len(found["train"]) + len(found["val"]) == 20


def test_the_cli_trains_on_a_looped_folder_and_says_so_once(pets, tmp_path):
    os.symlink("../cats", pets / "cats" / "loop")
    proc = run_cli(
        [
            "dataset=image_folder",
            f"dataset.path={pets}",
            "hardware=cpu",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "eval.iw_k=2",
            "eval.iw_chunk=2",
            "images.n_images=4",
            "pictures.enabled=false",
            "logger=csv",
            "likelihood=discretized_logistic",
            f"hydra.run.dir={tmp_path / 'job'}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = (proc.stdout + proc.stderr).splitlines()
    warned = [line for line in console if "reached a second time through a symbolic link" in line]
    assert len(warned) == 1 and "skipped 30 image file(s)" in warned[0], console
    assert any("found 60 images" in line for line in console), console


def test_the_official_dsprites_file_is_read_without_its_pickled_metadata(tmp_path):
    from vaezoo.data.dsprites import OFFICIAL_FILE, SIZE, load_dsprites

    folder = tmp_path / "dsprites"
    folder.mkdir()
    imgs = np.random.default_rng(0).integers(0, 2, (3, SIZE, SIZE), dtype=np.uint8)
    classes = np.arange(18).reshape(3, 6)
    metadata = np.array(Payload(tmp_path / MARKER), dtype=object)  # the official file's metadata is a pickle
    np.savez(folder / OFFICIAL_FILE, imgs=imgs, latents_classes=classes, metadata=metadata)
    loaded = load_dsprites(tmp_path)
    assert np.array_equal(np.unpackbits(loaded.packed.numpy(), axis=1).reshape(3, SIZE, SIZE), imgs)
    assert np.array_equal(loaded.classes, classes) and not (tmp_path / MARKER).exists()
    np.savez(folder / OFFICIAL_FILE, imgs=np.array([Payload(tmp_path / MARKER)] * 3), latents_classes=classes)
    with pytest.raises(
        DataError, match=f"{OFFICIAL_FILE} is not the official dSprites file \\({CARRIES_CODE}"
    ):
        load_dsprites(tmp_path)
    assert not (tmp_path / MARKER).exists()
