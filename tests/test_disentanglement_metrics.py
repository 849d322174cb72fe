"""Known answers for the disentanglement metrics on a small synthetic factor dataset.

The observation of a factor-class vector is the vector itself, so a "model" whose representation is
its input represents the true factors exactly; one that returns noise represents nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from vaezoo.data.factors import GroundTruthData, TableGroundTruth
from vaezoo.data.info import DataInfo
from vaezoo.errors import DataError
from vaezoo.evaluation.registry import MetricContext, run_metrics

SIZES = (4, 5, 6)
METRICS = ["mig", "dci", "beta_vae_score", "factor_vae_score", "sap"]
SMALL = {
    "mig": {"num_train": 3000},
    "dci": {"num_train": 1500, "num_test": 500, "n_estimators": 10},
    "beta_vae_score": {"num_train": 300, "num_eval": 300, "batch_size": 16},
    "factor_vae_score": {"num_train": 300, "num_eval": 300, "batch_size": 16, "num_variance_estimate": 1000},
    "sap": {"num_train": 1500, "num_test": 500},
}


def synthetic_truth() -> GroundTruthData:
    values = [np.linspace(0.0, 1.0, n) for n in SIZES]
    return GroundTruthData(
        ["a", "b", "c"], values, lambda c: torch.from_numpy(c).float().reshape(-1, 1, 1, len(SIZES))
    )


class Representation(nn.Module):
    """The true factors (optionally permuted, rescaled, with extra constant codes) or pure noise."""

    def __init__(self, kind: str, order: list[int] | None = None) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        self.kind, self.order = kind, order

    @property
    def device(self) -> torch.device:
        return self.anchor.device

    def representation(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        flat = x.flatten(1)
        if self.kind == "noise":
            return torch.randn(flat.shape[0], 4)
        codes = torch.cat(
            [flat * torch.tensor([1.0, -2.0, 0.5]), torch.randn(flat.shape[0], 1) * 1e-3], dim=1
        )
        return codes[:, self.order] if self.order else codes


def scores(kind: str, order: list[int] | None = None) -> dict[str, dict]:
    info = DataInfo("synthetic", (1, 1, 3), 256, factor_names=("a", "b", "c"))
    context = MetricContext(
        model=Representation(kind, order),
        batches=[],
        info=info,
        ground_truth=synthetic_truth(),
        dataset="synthetic",
        seed=3,
    )
    torch.manual_seed(0)
    return run_metrics(METRICS, context, SMALL, strict=True)


@pytest.fixture(scope="module")
def truth_scores() -> dict[str, dict]:
    return scores("truth")


def test_true_factors_score_near_one(truth_scores):
    values = {name: result.get("values", result.get("value")) for name, result in truth_scores.items()}
    assert values["mig"]["mig"] >= 0.95
    assert values["dci"]["disentanglement"] >= 0.95 and values["dci"]["completeness"] >= 0.9
    assert values["beta_vae_score"]["eval_accuracy"] >= 0.95
    assert values["factor_vae_score"]["eval_accuracy"] >= 0.95
    assert values["sap"] >= 0.25  # one linear SVM per code cannot separate middle classes: well below 1


def test_random_representation_scores_near_zero_or_chance():
    values = {name: result.get("values", result.get("value")) for name, result in scores("noise").items()}
    assert values["mig"]["mig"] <= 0.1
    assert values["dci"]["disentanglement"] <= 0.1
    chance = 1 / len(SIZES)
    assert abs(values["beta_vae_score"]["eval_accuracy"] - chance) <= 0.1
    assert abs(values["factor_vae_score"]["eval_accuracy"] - chance) <= 0.15
    assert values["sap"] <= 0.1


def test_every_metric_is_unchanged_when_latent_dimensions_are_permuted(truth_scores):
    permuted = scores("truth", [3, 2, 0, 1])
    for name in METRICS:
        a, b = truth_scores[name], permuted[name]
        first = a.get("values", {"value": a.get("value")})
        second = b.get("values", {"value": b.get("value")})
        for key in first:
            assert first[key] == pytest.approx(second[key], abs=0.02), (name, key)


def table_context(rows: np.ndarray) -> MetricContext:
    """Factor data given as a table of examples (as ``dataset=arrays`` with factors provides it)."""
    images = torch.from_numpy(rows).float().reshape(-1, 1, 1, rows.shape[1])
    truth = TableGroundTruth(["a", "b", "c"], rows, lambda i: images[torch.from_numpy(i)])
    info = DataInfo("arrays", (1, 1, 3), 256, factor_names=("a", "b", "c"))
    return MetricContext(model=Representation("truth"), batches=[], info=info, ground_truth=truth, seed=1)


def test_a_table_of_examples_with_factors_serves_the_metrics_and_names_a_missing_combination():
    grid = np.stack(np.meshgrid(*[np.linspace(0, 1, n) for n in SIZES], indexing="ij"), -1).reshape(-1, 3)
    table = np.concatenate([grid, grid])  # every combination (twice)
    out = run_metrics(["mig", "beta_vae_score"], table_context(table), SMALL, strict=True)
    assert out["mig"]["values"]["mig"] >= 0.95 and out["beta_vae_score"]["values"]["eval_accuracy"] >= 0.95
    with pytest.raises(DataError, match="needs every combination of factor values"):
        run_metrics(["factor_vae_score"], table_context(grid[:-5]), SMALL, strict=True)
