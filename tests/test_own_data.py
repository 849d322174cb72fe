"""Your own data (dataset=image_folder, dataset=arrays) and CIFAR-10 / CelebA from their official files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import run_cli
from tests.standins import class_images, write_celeba, write_cifar10, write_folder
from vaezoo.data import build_datamodule
from vaezoo.data.decoding import Decode, decode_all
from vaezoo.data.streaming import StreamingDataModule
from vaezoo.errors import ConfigError, DataError
from vaezoo.models import MODELS

FAMILIES = sorted(MODELS)  # every registered family, new ones included
# Streamed, the data reach a model through the same batch dicts and DataInfo as in memory, so the streamed
# sweeps train one family per way of reading them: plain images, labels (cvae), the dataset size
# (beta_tcvae's estimator), a discrete latent (vqvae). Every family trains in memory.
STREAMED_FAMILIES = ["beta_tcvae", "cvae", "vanilla", "vqvae"]
QUICK = [
    "hardware=cpu",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "eval.iw_k=4",
    "eval.iw_chunk=4",
    "images.n_images=16",
    "logger=csv",
    "likelihood=discretized_logistic",
]
SPLITS = ("train", "val", "test")


def held(name: str, root: Path | str = "unused", **options):
    dm = build_datamodule(in_memory=True, name=name, root=root, **options)
    dm.load()
    return dm


@pytest.fixture(scope="module")
def pets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """200 PNGs in cats/ and dogs/, and the same images as an .npz (N x H x W x 3, labels)."""
    root = tmp_path_factory.mktemp("pets")
    images, labels = class_images(100)
    write_folder(root / "pets", images, labels)
    np.savez(root / "pets.npz", images=images, labels=labels)
    return root / "pets", root / "pets.npz"


def test_folder_of_two_classes_trains_a_cvae_with_one_sample_row_per_class(pets, tmp_path):
    folder, _ = pets
    proc = run_cli(
        ["model=cvae", "dataset=image_folder", f"dataset.path={folder}", *QUICK, "hydra.run.dir=job"],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (tmp_path / "job" / "vaezoo.log").read_text()
    assert (
        "image_folder: found 200 images in folder " + str(folder) + " (160 / 20 / 20 train / val / test), "
        "2 classes (cats, dogs), 16x16x3, uint8 0-255 (files: RGB), 150.0 KB in memory"
    ) in log
    results = json.loads((tmp_path / "job" / "results.json").read_text())
    assert results["test"]["n_examples"] == 20
    # 8 columns of 16-pixel images upscaled x4 to 64-pixel cells, 2-pixel gaps; one row per class -> 2 rows
    assert Image.open(tmp_path / "job" / "images" / "samples.png").size == (8 * 66 + 2, 2 * 66 + 2)


def test_the_same_images_as_npz_give_the_same_tensors(pets):
    folder, npz = pets
    a, b = held("image_folder", path=str(folder)), held("arrays", path=str(npz))
    assert a.info.class_names == ("cats", "dogs") and a.info.num_classes == b.info.num_classes == 2
    images, labels = class_images(100)
    for split in SPLITS:
        assert torch.equal(a.splits[split].x, b.splits[split].x)
        assert torch.equal(a.splits[split].y, b.splits[split].y)
    # known answer: the test split is the first 20 of the seeded permutation, in file order
    order = np.sort(torch.randperm(200, generator=torch.Generator().manual_seed(0)).numpy()[:20])
    assert torch.equal(a.splits["test"].x, torch.from_numpy(images[order]).permute(0, 3, 1, 2))
    assert a.splits["test"].y.tolist() == labels[order].tolist()


def test_streamed_folder_gives_the_in_memory_batches(pets):
    folder, _ = pets
    streamed = build_datamodule(in_memory=False, name="image_folder", path=str(folder), num_workers=0)
    streamed.load()
    assert isinstance(streamed, StreamingDataModule)
    memory = held("image_folder", path=str(folder))
    assert streamed.info == memory.info
    idx = torch.arange(20)
    for split in SPLITS:
        torch.testing.assert_close(streamed.splits[split][idx]["x"], memory.splits[split][idx]["x"])
        assert torch.equal(streamed.splits[split][idx]["y"], memory.splits[split][idx]["y"])


def test_decoding_in_worker_processes_gives_the_same_tensor(pets):
    folder, _ = pets
    paths = sorted(folder.glob("*/*.png"))
    decode = Decode(3)
    here = decode_all(paths, decode, (3, 16, 16), workers=1)
    assert torch.equal(decode_all(paths, decode, (3, 16, 16), workers=2, min_files=0), here)
    assert torch.equal(here[0], torch.from_numpy(np.array(Image.open(paths[0]))).permute(2, 0, 1))


def test_in_memory_auto_streams_above_the_memory_limit(pets):
    folder, _ = pets
    # 200 x 3 x 16 x 16 bytes = 150 KB
    assert isinstance(
        build_datamodule(in_memory="auto", name="image_folder", path=str(folder), memory_limit_mb=0.1),
        StreamingDataModule,
    )
    assert not isinstance(
        build_datamodule(in_memory="auto", name="image_folder", path=str(folder), memory_limit_mb=0.2),
        StreamingDataModule,
    )


def test_split_folders_resize_crop_and_grey(tmp_path):
    rng = np.random.default_rng(1)
    for split, n in (("train", 12), ("test", 4)):
        for c in ("a", "b"):
            for i in range(n):
                image = rng.integers(0, 256, (20, 30), dtype=np.uint8)  # grey, 20 high, 30 wide
                (tmp_path / split / c).mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(tmp_path / split / c / f"{i}.png")
    dm = held("image_folder", path=str(tmp_path), val_size=4, image_size=10)
    assert [len(dm.splits[s]) for s in SPLITS] == [20, 4, 8]
    assert dm.info.shape == (1, 10, 10) and dm.info.class_names == ("a", "b")
    assert dm.splits["test"].y.tolist() == [0] * 4 + [1] * 4
    # resize 20x30 to cover 10x10 (10x15, bilinear), then cut the centre 10 columns (from column 2)
    source = Image.open(tmp_path / "test" / "a" / "0.png")
    first = source.resize((15, 10), Image.BILINEAR).crop((2, 0, 12, 10))
    assert torch.equal(dm.splits["test"].x[0, 0], torch.from_numpy(np.array(first)))
    rgb = held("image_folder", path=str(tmp_path), val_size=4, crop=[20, 20], channels=3)
    assert rgb.info.shape == (3, 20, 20)
    unlabelled = held("image_folder", path=str(tmp_path / "test" / "a"), val_size=1, test_size=1)
    assert not unlabelled.info.has_labels and unlabelled.info.shape == (1, 20, 30)
    assert "y" not in unlabelled.splits["train"][torch.arange(2)]


@pytest.mark.parametrize("layout", ["NHWC", "NCHW", "NHW"])
def test_array_layouts_and_value_ranges_are_detected(tmp_path, layout):
    images = np.random.default_rng(2).integers(
        0, 256, (30, 5, 7, 3 if layout != "NHW" else 1), dtype=np.uint8
    )
    stored = {"NHWC": images, "NCHW": images.transpose(0, 3, 1, 2), "NHW": images[..., 0]}[layout]
    np.save(tmp_path / "u8.npy", stored)
    torch.save({"images": torch.from_numpy(stored.astype(np.float32) / 255)}, tmp_path / "f.pt")
    a = held("arrays", path=str(tmp_path / "u8.npy"), val_size=5, test_size=5)
    b = held("arrays", path=str(tmp_path / "f.pt"), val_size=5, test_size=5)
    assert a.info.shape == (images.shape[3], 5, 7) and a.info.levels == 256 and not a.info.has_labels
    for split in SPLITS:
        assert torch.equal(a.splits[split].x, b.splits[split].x)
    whole = torch.cat([a.splits[s].x for s in SPLITS])
    assert sorted(whole.flatten().tolist()) == sorted(images.flatten().tolist())


def test_binary_arrays_with_factors_and_split_keys(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, (40, 8, 8), dtype=np.uint8)
    factors = rng.random((40, 2)).astype(np.float32)
    np.savez(
        tmp_path / "shapes.npz",
        train_images=x[:30],
        train_factors=factors[:30],
        test_images=x[30:],
        test_factors=factors[30:],
        factor_names=np.array(["scale", "angle"]),
    )
    dm = held("arrays", path=str(tmp_path / "shapes.npz"), val_size=6)
    assert dm.info.levels == 2 and dm.info.factor_names == ("scale", "angle") and dm.info.has_factors
    assert [len(dm.splits[s]) for s in SPLITS] == [24, 6, 10]
    assert torch.equal(dm.splits["test"].x[:, 0], torch.from_numpy(x[30:]))
    assert torch.equal(dm.splits["test"].factors, torch.from_numpy(factors[30:]))
    train_val = torch.cat([dm.splits["train"].factors, dm.splits["val"].factors])
    assert sorted(train_val[:, 0].tolist()) == sorted(factors[:30, 0].tolist())
    truth = dm.ground_truth()  # the test split's factors as ground truth for the disentanglement metrics
    assert truth.names == ("scale", "angle") and truth.factor_sizes == (10, 10)
    classes = truth.sample_factors(4, np.random.default_rng(0))
    assert truth.sample_observations_from_factors(classes, np.random.default_rng(0)).shape == (4, 1, 8, 8)
    # the same as .pt sub-dicts
    torch.save(
        {"train": {"images": torch.from_numpy(x[:30])}, "test": {"images": torch.from_numpy(x[30:])}},
        tmp_path / "shapes.pt",
    )
    pt = held("arrays", path=str(tmp_path / "shapes.pt"), val_size=6)
    for split in SPLITS:
        assert torch.equal(pt.splits[split].x, dm.splits[split].x)


def bad_input(tmp: Path, case: str) -> tuple[list[str], str]:
    """Writes a bad input for ``case``; returns its CLI arguments and the expected message part."""
    rng = np.random.default_rng(4)
    if case == "empty folder":
        (tmp / "empty").mkdir()
        return ["dataset=image_folder", f"dataset.path={tmp / 'empty'}"], "no images ("
    if case == "mixed sizes":
        write_folder(tmp / "mixed", rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8), None)
        Image.fromarray(rng.integers(0, 256, (9, 8, 3), dtype=np.uint8)).save(tmp / "mixed" / "tall.png")
        return ["dataset=image_folder", f"dataset.path={tmp / 'mixed'}"], "set dataset.image_size=N"
    if case == "unreadable file":
        write_folder(tmp / "broken", rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8), None)
        (tmp / "broken" / "bad.png").write_bytes(b"not a png")
        return ["dataset=image_folder", f"dataset.path={tmp / 'broken'}"], f"{tmp / 'broken' / 'bad.png'}"
    if case == "values out of range":
        np.savez(tmp / "range.npz", images=rng.random((10, 8, 8)) * 2)
        return ["dataset=arrays", f"dataset.path={tmp / 'range.npz'}"], "outside [0, 1]; divide by 255"
    if case == "labels do not match":
        np.savez(tmp / "labels.npz", images=np.zeros((10, 8, 8), np.uint8), labels=np.zeros(9, np.int64))
        return ["dataset=arrays", f"dataset.path={tmp / 'labels.npz'}"], "9 labels for 10 images"
    if case == "wrong dims":
        np.save(tmp / "flat.npy", np.zeros((10, 64), np.uint8))
        return ["dataset=arrays", f"dataset.path={tmp / 'flat.npy'}"], "reshape them"
    raise ValueError(case)


BAD_INPUTS = [
    "empty folder",
    "mixed sizes",
    "unreadable file",
    "values out of range",
    "labels do not match",
    "wrong dims",
]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_inputs_are_refused_with_the_fix(tmp_path, case):
    """Each refusal from the data module itself (what the command line prints as its one line)."""
    args, expected = bad_input(tmp_path, case)
    options = dict(arg.split("=", 1) for arg in args)
    with pytest.raises((DataError, ConfigError)) as refused:
        build_datamodule(name=options["dataset"], path=options["dataset.path"]).load()
    assert expected in str(refused.value) and "\n" not in str(refused.value)


def test_a_bad_input_is_one_line_and_a_nonzero_exit_on_the_command_line(tmp_path):
    # One case through the CLI: every data refusal reaches the user the same way (the catalogue of
    # tests/test_bad_inputs.py runs many more through it).
    args, expected = bad_input(tmp_path, "mixed sizes")
    proc = run_cli(
        [*args, "hardware=cpu", "logger=none", f"paths.runs={tmp_path}/runs"], cwd=tmp_path, timeout=300
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0], lines[0]


def test_more_refusals_in_process(tmp_path):
    np.save(tmp_path / "square.npy", np.zeros((10, 3, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"set dataset\.layout=NCHW or dataset\.layout=NHWC"):
        build_datamodule(name="arrays", path=str(tmp_path / "square.npy"))
    assert build_datamodule(
        name="arrays", path=str(tmp_path / "square.npy"), layout="NCHW", val_size=2, test_size=2
    ).info.shape == (3, 8, 3)
    with pytest.raises(ConfigError, match=r"dataset\.shuffle is not an option of dataset=arrays"):
        build_datamodule(name="arrays", path=str(tmp_path / "square.npy"), shuffle=True)
    with pytest.raises(ConfigError, match=r"needs dataset\.path"):
        build_datamodule(name="image_folder")
    with pytest.raises(ConfigError, match="too few"):
        build_datamodule(
            name="arrays", path=str(tmp_path / "square.npy"), layout="NCHW", val_size=5, test_size=5
        )


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("official")
    write_cifar10(root)
    write_celeba(root)
    return root


def test_cifar10_batches_and_celeba_files_are_read_as_written(official):
    import pickle

    cifar = held("cifar10", root=official, val_size=8, download=False)
    assert [len(cifar.splits[s]) for s in SPLITS] == [32, 8, 10]
    batch = pickle.loads((official / "cifar-10-batches-py" / "test_batch").read_bytes())
    assert torch.equal(cifar.splits["test"].x, torch.from_numpy(batch["data"].reshape(-1, 3, 32, 32)))
    assert cifar.splits["test"].y.tolist() == batch["labels"] and cifar.info.class_names[3] == "class3"
    celeba = build_datamodule(in_memory=True, name="celeba", root=official, image_size=16, download=False)
    celeba.load()
    assert [len(celeba.splits[s]) for s in SPLITS] == [24, 8, 8] and celeba.info.shape == (3, 16, 16)
    row = (official / "celeba" / "list_attr_celeba.txt").read_text().splitlines()[2 + 24].split()
    assert row[0] == "000025.jpg"
    assert celeba.splits["val"].y[0].tolist() == [(int(v) + 1) // 2 for v in row[1:]]
    streamed = build_datamodule(in_memory=False, name="celeba", root=official, image_size=16, num_workers=0)
    streamed.load()
    idx = torch.arange(8)
    torch.testing.assert_close(streamed.splits["test"][idx]["x"], celeba.splits["test"][idx]["x"])


@pytest.mark.parametrize("in_memory", [True, False], ids=["in_memory", "streamed"])
@pytest.mark.parametrize("dataset", ["cifar10", "celeba"])
def test_every_family_trains_on_the_standins_in_memory_and_streamed(official, tmp_path, dataset, in_memory):
    # One test per data path, so the suite's workers share the four sweeps.
    # Pictures of colour latents are drawn for CelebA (with the cVAE's 40-attribute rows); CIFAR-10's
    # jobs skip them, as they would test nothing new and cost about a minute.
    # Streamed jobs skip them too: the pictures read the same model either way.
    extra = (
        ["dataset.val_size=8", "pictures.enabled=false"]
        if dataset == "cifar10"
        else ["dataset.image_size=16", f"pictures.enabled={str(in_memory).lower()}"]
    )
    proc = run_cli(
        [
            "-m",
            f"model={','.join(FAMILIES if in_memory else STREAMED_FAMILIES)}",
            f"dataset={dataset}",
            f"dataset.in_memory={str(in_memory).lower()}",
            "dataset.num_workers=1",
            "dataset.download=false",
            f"paths.data={official}",
            *extra,
            *QUICK,
            "hydra.sweep.subdir=${hydra.job.num}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in (tmp_path / "runs" / "multirun").glob("*/*") if (p / "results.json").is_file())
    seen = set()
    for job in jobs:
        results = json.loads((job / "results.json").read_text())
        log = (job / "vaezoo.log").read_text()
        streamed = "streamed by DataLoader workers instead" in log
        assert streamed != (" in memory\n" in log), log[:2000]
        seen.add((results["model"], streamed))
        assert np.isfinite(results["test"]["elbo_nats"]), job.name
        assert results["test"]["n_examples"] == (10 if dataset == "cifar10" else 8)
        assert f"{dataset}: found {50 if dataset == 'cifar10' else 40} images" in log
        if results["model"] == "cvae":  # CelebA: conditioned on its 40 attributes, one vector per row
            assert (job / "images" / "samples.png").is_file()
    assert seen == {(m, not in_memory) for m in (FAMILIES if in_memory else STREAMED_FAMILIES)}
