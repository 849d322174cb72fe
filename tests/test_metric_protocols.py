"""The metrics' published protocols, both representations and the progress lines, on cheap known cases."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from tests.synthetic_representations import FACTOR_SIZES
from tests.test_disentanglement_reference import Synthetic
from vaezoo.data.factors import GroundTruthData
from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.evaluation.registry import METRICS, MetricContext, load_metrics, run_metrics


def context(kind: str) -> MetricContext:
    truth = GroundTruthData(
        [f"f{i}" for i in range(len(FACTOR_SIZES))],
        [np.arange(n) for n in FACTOR_SIZES],
        lambda c: torch.from_numpy(c).double().reshape(len(c), 1, 1, -1),
    )
    info = DataInfo("synthetic", (1, 1, len(FACTOR_SIZES)), 2)
    return MetricContext(model=Synthetic(kind), batches=[], info=info, ground_truth=truth, seed=1)


def test_defaults_are_disentanglement_libs_protocols():
    load_metrics()
    assert METRICS["dci"].defaults["model"] == "gradient_boosting"
    assert METRICS["dci"].defaults["n_estimators"] == 100  # sklearn's default, as disentanglement_lib
    assert METRICS["factor_vae_score"].defaults["prune_threshold"] == 0.05
    assert METRICS["sap"].defaults["standardise"] is False


def test_factor_vae_score_prunes_codes_of_small_scale_as_disentanglement_lib():
    small = {"batch_size": 8, "num_train": 100, "num_eval": 50, "num_variance_estimate": 200}
    tiny = run_metrics(["factor_vae_score"], context("scaled_0.01"), {"factor_vae_score": small})
    assert tiny["factor_vae_score"]["values"] == {
        "eval_accuracy": 0.0,
        "train_accuracy": 0.0,
        "active_codes": 0,
    }
    kept = run_metrics(
        ["factor_vae_score"], context("scaled_0.01"), {"factor_vae_score": small | {"prune_threshold": 0.0}}
    )
    assert kept["factor_vae_score"]["values"]["eval_accuracy"] == 1.0


def test_each_representation_has_its_own_key_and_progress_lines_name_the_cost(caplog):
    with caplog.at_level(logging.INFO, logger="vaezoo.evaluation.registry"):
        out = run_metrics(
            ["mig", "mutual_info_score"],
            context("noisy_0.2"),
            {"mig": {"num_train": 300}, "mutual_info_score": {"num_train": 300}},
            representations=["mean", "sampled"],
        )
    assert set(out) == {"mig", "mig@sampled", "mutual_info_score", "mutual_info_score@sampled"}
    assert out["mig@sampled"]["representation"] == "sampled"
    lines = [r.getMessage() for r in caplog.records]
    assert "metric 1/4 mig: encodes 300 observations" in lines
    assert any(line.startswith("metric 2/4 mig@sampled: encodes 300 observations, about ") for line in lines)
    with pytest.raises(ConfigError, match=r"eval\.representations"):
        run_metrics(["mig"], context("truth"), representations=["median"])


def test_a_deterministic_encoder_has_no_sampled_representation(compose_cfg):
    from vaezoo.builder import model_params
    from vaezoo.likelihoods import Bernoulli
    from vaezoo.models import build_model

    cfg = compose_cfg("model=vanilla", "dataset=digits")
    model = build_model("vanilla", model_params(cfg.model), DataInfo("digits", (1, 8, 8), 2, 10), Bernoulli())
    x = torch.rand(4, 1, 8, 8)
    torch.manual_seed(0)
    sampled = model.sample_representation(x)
    assert sampled.shape == model.representation(x).shape and not torch.equal(
        sampled, model.representation(x)
    )
    with pytest.raises(NotImplementedError, match="deterministic"):
        type(model).sample_representation(_Deterministic(), x)


class _Deterministic(torch.nn.Module):
    def encode(self, x, y=None):
        return x.flatten(1)
