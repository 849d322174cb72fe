"""Known answers for the sample, control and anomaly metrics (Fréchet distance, conditional
accuracy, OOD AUROC) and the judge classifier's cache (issue 9)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import run_cli
from vaezoo.errors import ConfigError, DataError
from vaezoo.evaluation.classifier import (
    classifier_record,
    fit_classifier,
    load_classifier,
    save_classifier,
    split_tensors,
)
from vaezoo.evaluation.conditional_accuracy import conditional_accuracy
from vaezoo.evaluation.fid import frechet_distance
from vaezoo.evaluation.ood import anomaly_scores, ood_auroc, ood_dataset_config, ood_test_batches
from vaezoo.evaluation.registry import MetricContext
from vaezoo.models.base import ELBOTerms


def whitened(n: int, d: int, seed: int) -> torch.Tensor:
    """n points in d dimensions with sample mean exactly 0 and sample covariance exactly I."""
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    x = x - x.mean(0)
    chol = torch.linalg.cholesky(torch.cov(x.T))
    return torch.linalg.solve_triangular(chol, x.T, upper=False).T


def test_frechet_identical_sets_is_zero() -> None:
    feats = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)


def test_frechet_shifted_and_scaled_gaussians_match_the_closed_form() -> None:
    """Gaussians with commuting covariances: ||μa − μb||² + Σ (σa − σb)², also after a common rotation."""
    d = 8
    scale_a, scale_b = torch.linspace(0.5, 2.0, d).double(), torch.linspace(1.5, 0.3, d).double()
    mu_a, mu_b = torch.zeros(d).double(), torch.arange(d).double() / 3
    a = whitened(2000, d, 1) * scale_a + mu_a
    b = whitened(3000, d, 2) * scale_b + mu_b
    expected = float((mu_a - mu_b).square().sum() + (scale_a - scale_b).square().sum())
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(3)).double())
    assert frechet_distance(a @ rotation, b @ rotation) == pytest.approx(expected, rel=1e-9)


def test_frechet_matches_scipy_sqrtm_for_non_commuting_covariances() -> None:
    from scipy import linalg

    a = whitened(400, 3, 4) @ torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.2, 0.0, 2.0]]).double()
    b = whitened(400, 3, 5) @ torch.tensor([[0.7, 0.0, 0.4], [0.1, 1.5, 0.0], [0.0, 0.6, 1.0]]).double() + 1
    ca, cb = torch.cov(a.T).numpy(), torch.cov(b.T).numpy()
    root = linalg.sqrtm(ca @ cb).real
    expected = float(((a.mean(0) - b.mean(0)) ** 2).sum()) + float((ca + cb - 2 * root).trace())
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)


class PixelZeroClassifier:
    """A stand-in judge: the label is written in the first pixel."""

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)[:, 0].round().long()


def test_conditional_accuracy_of_obeying_and_ignoring_samplers() -> None:
    def obeys(n: int, y: torch.Tensor) -> torch.Tensor:
        x = torch.zeros(n, 1, 2, 2)
        x[:, 0, 0, 0] = y.float()
        return x

    def ignores(n: int, y: torch.Tensor) -> torch.Tensor:
        return obeys(n, torch.randint(0, 10, (n,)))

    perfect = conditional_accuracy(obeys, PixelZeroClassifier(), 10, 300, seed=0)
    assert perfect["accuracy"] == 1.0 and perfect["per_class"] == [1.0] * 10
    chance = conditional_accuracy(ignores, PixelZeroClassifier(), 10, 1000, seed=0)["accuracy"]
    assert abs(chance - 0.1) < 0.02  # 10,000 draws: standard error 0.003


def test_ood_auroc_known_answers() -> None:
    low, high = torch.arange(100.0), torch.arange(100.0) + 1000
    assert ood_auroc(low, high) == 1.0
    assert ood_auroc(high, low) == 0.0
    assert ood_auroc(low, low.clone()) == 0.5
    overlap = ood_auroc(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 3.0]))
    assert overlap == 0.75  # 3 of the 4 (out, in) pairs are ordered
    with pytest.raises(ValueError):
        ood_auroc(torch.tensor([0.0, math.nan]), low)


class TermsModel(torch.nn.Module):
    """Returns fixed ELBO terms: log p(x|z) = −sum(x), KL per dimension = x's first two pixels."""

    requires_labels = False

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def elbo_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> ELBOTerms:
        flat = x.flatten(1)
        return ELBOTerms(log_px_z=-flat.sum(1), kl={"z": flat[:, :2]})


def test_anomaly_scores_come_from_the_elbo_terms() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.5, 4.0]]).reshape(2, 1, 1, 3)
    scores = anomaly_scores(TermsModel(), [{"x": x}])
    assert scores["kl"].tolist() == [3.0, 0.5]
    assert scores["neg_elbo"].tolist() == [6.0 + 3.0, 4.5 + 0.5]


def test_ood_dataset_is_preprocessed_as_the_jobs(tmp_path: Path) -> None:
    job = OmegaConf.create({"name": "mnist", "root": str(tmp_path), "binarize": "dynamic", "split_seed": 3})
    node = ood_dataset_config(job, "fashion_mnist")
    assert (node.name, node.root, node.binarize, node.split_seed) == (
        "fashion_mnist",
        str(tmp_path),
        "dynamic",
        3,
    )
    with pytest.raises(ConfigError, match="not a dataset; choose one of"):
        ood_dataset_config(job, "fashion")
    with pytest.raises(ConfigError, match="job's own dataset"):
        ood_dataset_config(job, "mnist")


def test_ood_dataset_of_another_shape_is_a_one_line_error(mnist_root: Path) -> None:
    job = OmegaConf.create(
        {"name": "digits", "root": str(mnist_root), "binarize": "dynamic", "split_seed": 0}
    )
    with pytest.raises(DataError, match=r"shape \(1, 28, 28\) but the model reads \(1, 8, 8\)"):
        ood_test_batches(job, "mnist", (1, 8, 8), batch_size=100, max_examples=10)


@pytest.fixture(scope="module")
def digits_classifier(tmp_path_factory: pytest.TempPathFactory):
    from vaezoo.builder import build

    root = tmp_path_factory.mktemp("data")
    from vaezoo.config.options import compose_group

    node = compose_group("dataset", "digits")
    datamodule = build(OmegaConf.merge(node, {"root": str(root), "binarize": "none"}))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: more threads only contend on a shared CPU
    try:
        model, figures = fit_classifier(
            datamodule, epochs=8, batch_size=32, seed=0, channels=(16, 32), hidden=64
        )
    finally:
        torch.set_num_threads(threads)
    save_classifier(model, "digits", root, {"test_accuracy": figures["test"], "command": "test"})
    return root, datamodule, figures


def test_classifier_caches_and_judges_real_images(digits_classifier) -> None:
    root, datamodule, figures = digits_classifier
    assert figures["test"] >= 0.9
    judge = load_classifier("digits", root)
    assert classifier_record("digits", root)["test_accuracy"] == figures["test"]
    assert torch.load(root / "classifiers" / "digits.pt", weights_only=True)  # a plain state_dict
    x, y = split_tensors(datamodule, "test")
    assert float((judge.predict(x) == y).double().mean()) == pytest.approx(figures["test"])
    assert judge.features(x).shape == (len(x), 64)
    # Real test images of the asked class: the classifier's accuracy; of any class: chance.
    by_class = [x[y == c] for c in range(10)]

    def real_images(n: int, labels: torch.Tensor) -> torch.Tensor:
        pool = by_class[int(labels[0])]
        return pool[torch.randint(0, len(pool), (n,))]

    obeying = conditional_accuracy(real_images, judge, 10, 200, seed=0)["accuracy"]
    assert obeying >= 0.85
    ignoring = conditional_accuracy(lambda n, _: x[torch.randint(0, len(x), (n,))], judge, 10, 200, seed=0)
    assert abs(ignoring["accuracy"] - 0.1) < 0.05
    # Features of two halves of the test set are closer than those of test images and noise.
    feats = judge.features(x)
    noise = judge.features(torch.rand_like(x))
    assert frechet_distance(feats[::2], feats[1::2]) < 0.1 * frechet_distance(feats, noise)


def test_missing_classifier_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"train it once with `python -m vaezoo.classifier dataset=mnist"):
        load_classifier("mnist", tmp_path)


def test_classifier_cli_trains_and_caches(tmp_path: Path) -> None:
    done = run_cli(
        [
            "dataset=digits",
            f"paths.data={tmp_path}",
            "epochs=1",
            "channels=[4,8]",
            "hidden=16",
            "num_threads=1",
        ],
        cwd=tmp_path,
        module="vaezoo.stages.classifier",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = classifier_record("digits", tmp_path)
    assert (
        record["command"] == "python -m vaezoo.classifier dataset=digits" and 0 < record["test_accuracy"] <= 1
    )


def digits_context(model_name: str, root: Path, datamodule, ood: bool = False) -> MetricContext:
    """A registry context over the digits test split for a tiny untrained model of ``model_name``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from vaezoo.builder import model_params
    from vaezoo.likelihoods import Bernoulli
    from vaezoo.models import build_model
    from vaezoo.paths import config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("config", overrides=[f"model={model_name}", "dataset=digits"])
    GlobalHydra.instance().clear()
    torch.manual_seed(0)
    info = datamodule.info
    model = build_model(model_name, model_params(cfg.model), info, Bernoulli()).eval()
    batches = list(datamodule.loader("test", batch_size=100))
    noise = [{"x": torch.rand_like(b["x"]).round(), "y": b["y"]} for b in batches] if ood else None
    return MetricContext(
        model=model, batches=batches, info=info, dataset="digits", data_root=str(root), ood_batches=noise
    )


def test_registered_sample_metrics_run_skip_and_explain(digits_classifier, tmp_path: Path) -> None:
    from vaezoo.evaluation.registry import run_metrics

    root, datamodule, _ = digits_classifier
    settings = {"fid": {"n_samples": 200}, "conditional_accuracy": {"n_per_class": 20}}
    names = ["fid", "conditional_accuracy", "ood_auroc"]
    cvae = run_metrics(names, digits_context("cvae", root, datamodule, ood=True), settings)
    assert cvae["fid"]["values"]["distance"] > 0 and cvae["fid"]["values"]["samples"] == 200
    assert 0 <= cvae["conditional_accuracy"]["values"]["accuracy"] <= 1
    assert len(cvae["conditional_accuracy"]["values"]["per_class"]) == 10
    assert set(cvae["ood_auroc"]["values"]) >= {"neg_elbo", "kl"}
    assert all(r["seconds"] >= 0 and "settings" in r for r in cvae.values())
    vanilla = run_metrics(names, digits_context("vanilla", root, datamodule), settings)
    assert "does not draw by class" in vanilla["conditional_accuracy"]["skipped"]
    assert "eval.ood_dataset" in vanilla["ood_auroc"]["skipped"]
    no_judge = digits_context("vanilla", tmp_path, datamodule)
    assert "python -m vaezoo.classifier dataset=digits" in run_metrics(["fid"], no_judge)["fid"]["skipped"]
    with pytest.raises(
        ConfigError, match=r"metric fid cannot run: no classifier .*python -m vaezoo.classifier"
    ):
        run_metrics(["fid"], no_judge, strict=True)
