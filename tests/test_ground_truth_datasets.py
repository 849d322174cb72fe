"""The factor-grid datasets (vaezoo.data.grid) on stand-ins written in their official formats.

Every stand-in image's pixels encode its grid cell (tests/standins.py), so a batch's images can be
checked against its factors, and the ground truth the metrics sample from against its classes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from tests import standins
from vaezoo.config.schema import check_command_line
from vaezoo.data.grid import seeded_uniform
from vaezoo.errors import DataError
from vaezoo.paths import config_dir

# name -> (full grid sizes of the stand-in, how to read the cell back from float images [B, C, H, W])
LIT = {
    "color_dsprites": lambda x: (x[:, 0] > 0).sum((1, 2)) - 1,
    "noisy_dsprites": lambda x: (x == 1).all(1).sum((1, 2)) - 1,
    "scream_dsprites": lambda x: (x[:, 2] > 0.5).sum((1, 2)) - 1,  # the stand-in's blue is 0
}
FILLED = lambda x: torch.round(x[:, 0, 0, 0] * 255 / 4).long()  # noqa: E731
GRIDS = {
    "color_dsprites": (3, 2, 2, 2, 2),
    "noisy_dsprites": (3, 2, 2, 2, 2),
    "scream_dsprites": (3, 2, 2, 2, 2),
    "shapes3d": (2, 2, 2, 2, 2, 2),
    "smallnorb": (2, 2, 2, 3, 2),
    "cars3d": (2, 3, 3),
    "mpi3d": (2, 1, 2, 1, 1, 2, 3),
}
NUISANCE = {"smallnorb": [1]}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("grids")
    standins.write_dsprites(root)
    standins.write_scream(root / "scream" / "scream.jpg")  # PNG bytes; PIL reads them by content
    standins.write_shapes3d(root)
    standins.write_smallnorb(root)
    standins.write_cars3d(root)
    standins.write_mpi3d(root)
    return root


def datamodule(name: str, root: Path, *extra: str):
    """The data module of ``python -m vaezoo dataset=<name>`` (validated, then instantiated)."""
    overrides = [f"dataset={name}", f"paths.data={root}", "dataset.val_size=4", "dataset.test_size=4"]
    if name == "mpi3d":
        overrides.append("dataset.factor_sizes=[2,1,2,1,1,2,3]")
    cfg = check_command_line([*overrides, *extra], config_dir())
    dm = instantiate(cfg.dataset)
    dm.load()
    return dm


def exposed(classes: np.ndarray, name: str) -> np.ndarray:
    return np.delete(classes, NUISANCE.get(name, []), axis=1)


@pytest.mark.parametrize("name", list(GRIDS))
def test_images_and_factors_line_up_in_splits_and_ground_truth(root, name):
    dm = datamodule(name, root)
    sizes = GRIDS[name]
    read = LIT.get(name, FILLED)
    truth = dm.ground_truth()
    assert truth.factor_sizes == tuple(np.delete(sizes, NUISANCE.get(name, [])))
    assert dm.info.factor_names == truth.names and dm.info.shape[1:] == (64, 64)
    assert sum(len(dm.splits[s]) for s in ("train", "val", "test")) == int(np.prod(sizes))
    split = dm.splits["train"]
    batch = split[torch.arange(len(split))]["x"]
    assert batch.dtype == torch.float32 and batch.min() >= 0 and batch.max() <= 1
    classes = np.stack(np.unravel_index(read(batch).numpy(), sizes), axis=1)
    values = np.stack([v[c] for v, c in zip(truth.values, exposed(classes, name).T, strict=True)], axis=1)
    np.testing.assert_allclose(values, split.factors.numpy(), rtol=1e-6)
    # The metrics' sampler: the images shown are those of the factor classes drawn.
    drawn, images = truth.sample(64, np.random.default_rng(1))
    shown = np.stack(np.unravel_index(read(images).numpy(), sizes), axis=1)
    np.testing.assert_array_equal(exposed(shown, name), drawn)
    if name == "smallnorb":  # the instance is drawn at random, both instances appear
        assert set(shown[:, 1]) == {0, 1}


@pytest.mark.parametrize("name", ["color_dsprites", "noisy_dsprites", "scream_dsprites"])
def test_colour_and_noise_are_fixed_per_index_and_by_the_seed(root, name):
    dm = datamodule(name, root)
    truth = dm.ground_truth()
    classes = np.stack(np.unravel_index(np.arange(48), GRIDS[name]), axis=1)
    first = truth.sample_observations_from_factors(classes, np.random.default_rng(0))
    again = truth.sample_observations_from_factors(classes[::-1].copy(), np.random.default_rng(9))
    assert torch.equal(first, again.flip(0))  # same index, same image, in any batch, any rng
    split = dm.splits["test"]
    cells = split.x[:4]
    assert torch.equal(split[torch.arange(4)]["x"], first[cells])  # training sees the metrics' images
    other = datamodule(name, root, "dataset.nuisance_seed=1").ground_truth()
    assert not torch.equal(other.sample_observations_from_factors(classes, None), first)
    if name == "color_dsprites":
        lit = first[:, 0] > 0
        for image, mask in zip(first, lit, strict=True):
            colour = image[:, mask]  # [3, lit pixels]: one colour per image, each channel in [0.5, 1)
            assert (colour == colour[:, :1]).all() and (colour >= 0.5).all() and (colour < 1).all()
            assert (image[:, ~mask] == 0).all()
        assert len(torch.unique(first[:, :, 0, 0], dim=0)) == 48
    if name == "noisy_dsprites":
        background = first[first != 1]
        assert 0.45 < background.mean() < 0.55 and background.min() >= 0
    if name == "scream_dsprites":
        # Background red = (row of the painting / 255 + shift) / 2: half a grey level per row; the
        # sprite (first pixels of row 0) is 1 - background.
        red = first[:, 0].double()
        np.testing.assert_allclose((red[:, 1:, 60] - red[:, :-1, 60]).numpy(), 0.5 / 255, atol=1e-6)
        green = first[:, 1].double()
        np.testing.assert_allclose((green[:, 40, 1:] - green[:, 40, :-1]).numpy(), 0.5 / 255, atol=1e-6)
        predicted = red[:, 1, 0] - 0.5 / 255  # background red at (0, 0)
        np.testing.assert_allclose(red[:, 0, 0].numpy(), (1 - predicted).numpy(), atol=1e-6)


def test_seeded_uniform_is_uniform_and_a_function_of_seed_and_cell():
    u = seeded_uniform(0, torch.arange(100_000), 4)
    assert u.shape == (100_000, 4) and u.min() >= 0 and u.max() < 1
    assert abs(float(u.mean()) - 0.5) < 0.005 and abs(float(u.std()) - 12**-0.5) < 0.005
    assert abs(float(np.corrcoef(u[:, 0], u[:, 1])[0, 1])) < 0.02
    assert torch.equal(seeded_uniform(0, torch.tensor([7, 3]), 4), u[[7, 3]])
    assert not torch.equal(seeded_uniform(1, torch.arange(10), 4), u[:10])


def test_missing_files_name_the_file_and_where_to_get_it(tmp_path):
    cases = {
        "shapes3d": "3dshapes.h5, which is missing.*storage.googleapis.com/3d-shapes",
        "smallnorb": "training-dat.mat.*cs.nyu.edu",
        "cars3d": "cars.*nips2015-analogy-data.tar.gz",
        "mpi3d": "mpi3d_toy.npz.*Final_Dataset/mpi3d_toy.npz",
        "scream_dsprites": "dataset.scream_image=.*scream.jpg.*The_Scream.jpg",
    }
    for name, pattern in cases.items():
        with pytest.raises(DataError, match=pattern):
            datamodule(name, tmp_path)


def test_malformed_files_are_refused_in_one_line(tmp_path):
    import h5py

    (tmp_path / "3dshapes").mkdir()
    with h5py.File(tmp_path / "3dshapes" / "3dshapes.h5", "w") as f:
        f["images"] = np.zeros((4, 32, 32, 3), np.uint8)
        f["labels"] = np.zeros((4, 6))
    with pytest.raises(DataError, match=r"not uint8 \[N, 64, 64, 3\]"):
        datamodule("shapes3d", tmp_path)
    standins.write_mpi3d(tmp_path)
    np.savez(tmp_path / "mpi3d_toy" / "mpi3d_toy.npz", images=np.array([object()]))
    with pytest.raises(DataError, match="not an MPI3D npz"):
        datamodule("mpi3d", tmp_path)
    standins.write_smallnorb(tmp_path)
    dat = next((tmp_path / "small_norb").glob("*training-dat.mat"))
    dat.write_bytes(b"\x1f\x8b" + dat.read_bytes()[2:])  # what a gzipped file starts with
    with pytest.raises(DataError, match="still gzipped"):
        datamodule("smallnorb", tmp_path)


class PixelCode(torch.nn.Module):
    """A "model" whose representation is the true factor classes read from the pixels (or noise)."""

    def __init__(self, name: str, noise: bool) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.name, self.noise = name, noise

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def representation(self, x, y=None):
        if self.noise:
            return torch.randn(len(x), 4)
        cells = LIT.get(self.name, FILLED)(x).numpy()
        classes = exposed(np.stack(np.unravel_index(cells, GRIDS[self.name]), axis=1), self.name)
        return torch.from_numpy(classes).float()


@pytest.mark.parametrize("name", ["shapes3d", "smallnorb"])
def test_the_metrics_sample_the_grid_true_factors_score_one_and_noise_zero(root, name):
    from vaezoo.evaluation.registry import MetricContext, run_metrics

    dm = datamodule(name, root)
    settings = {"mig": {"num_train": 2000}}
    found = {}
    for noise in (False, True):
        context = MetricContext(
            model=PixelCode(name, noise), batches=[], info=dm.info, ground_truth=dm.ground_truth(), seed=0
        )
        found[noise] = run_metrics(["mig"], context, settings, strict=True)["mig"]["values"]["mig"]
    assert found[False] > 0.95 and found[True] < 0.1


def test_a_job_trains_on_the_shapes3d_standin_and_measures_mig(root, tmp_path):
    import json

    from tests.conftest import run_cli

    proc = run_cli(
        [
            "dataset=shapes3d",
            f"paths.data={root}",
            "dataset.val_size=8",
            "dataset.test_size=8",
            "hardware=cpu",
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=2",
            "trainer.enable_progress_bar=false",
            "logger=csv",
            "pictures.enabled=false",
            "eval.iw_k=4",
            "eval.iw_chunk=4",
            "images.n_images=8",
            "eval.metrics=[kl_per_dim,mig]",
            "+eval.settings.mig.num_train=500",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = (tmp_path / "runs").rglob("results.json")
    metrics = json.loads(results.read_text())["metrics"]
    assert 0 <= metrics["mig"]["values"]["mig"] <= 1
