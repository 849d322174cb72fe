"""Every registered metric, test-report key and picture declares what it is (direction, unit, title).

The metrics are taken from the registry, so a new metric is checked the day it is added: each one runs
on a tiny fake context that satisfies all its needs, and :func:`run_metrics` refuses a key it did not
declare; every declaration must also be used by that run (no dead or misspelt declaration).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vaezoo.builder import model_params
from vaezoo.data.factors import GroundTruthData
from vaezoo.data.info import DataInfo
from vaezoo.evaluation.classifier import SmallCNN, classifier_paths
from vaezoo.evaluation.held_out import TEST_REPORTED, evaluate
from vaezoo.evaluation.registry import METRICS, MetricContext, load_metrics, register_metric, run_metrics
from vaezoo.evaluation.reported import (
    DIRECTIONS,
    PAPER_REPORTED,
    PRIOR_REPORTED,
    RUN_REPORTED,
    SINGLE,
    Reported,
    find,
)
from vaezoo.likelihoods import Bernoulli
from vaezoo.models import build_model
from vaezoo.visualize import PICTURES, described

DIGITS = DataInfo("digits", (1, 8, 8), 2, 10, factor_names=("row", "column"))
#: Settings above this are shrunk for the fake run (paper defaults take minutes, the keys are the same).
SMALL = 64


def all_metrics() -> list[str]:
    return sorted(load_metrics())


def images_of_factors(classes: np.ndarray) -> torch.Tensor:
    """A lit pixel at (2 * row class, 2 * column class) of an 8x8 image: a dSprites-like toy."""
    x = torch.zeros(len(classes), 1, 8, 8)
    x[
        torch.arange(len(classes)), 0, torch.as_tensor(classes[:, 0] * 2), torch.as_tensor(classes[:, 1] * 2)
    ] = 1
    return x


def fake_context(compose_cfg, tmp_path: Path, conditional: bool) -> MetricContext:
    """A context that serves every need: factors, labels, sampler, importance weights, a judge
    classifier (untrained, cached where the metrics look), out-of-distribution batches, a cVAE."""
    name = "cvae" if conditional else "vanilla"
    cfg = compose_cfg(f"model={name}", "dataset=digits")
    torch.manual_seed(0)
    model = build_model(name, model_params(cfg.model), DIGITS, Bernoulli()).eval()
    weights, record = classifier_paths("digits", tmp_path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    judge = SmallCNN((1, 8, 8), 10)
    torch.save(judge.state_dict(), weights)
    record.write_text(json.dumps({"architecture": judge.hparams, "test_accuracy": 0.5}))
    g = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.rand(64, 1, 8, 8, generator=g), generator=g)
    y = torch.arange(64) % 10
    batches = [{"x": x[:32], "y": y[:32]}, {"x": x[32:], "y": y[32:]}]
    truth = GroundTruthData(["row", "column"], [np.arange(4), np.arange(4)], images_of_factors)
    return MetricContext(
        model=model,
        batches=batches,
        info=DIGITS,
        ground_truth=truth,
        data_root=str(tmp_path),
        dataset="digits",
        ood_batches=[{"x": 1 - x[:32], "y": y[:32]}],
        extras={"ood_dataset": "inverted digits"},
    )


def small_settings(name: str) -> dict[str, int]:
    return {k: min(v, SMALL) for k, v in METRICS[name].defaults.items() if type(v) is int and v > SMALL}


def check_declaration(owner: str, declaration: Reported) -> None:
    assert isinstance(declaration, Reported), owner
    assert declaration.better in DIRECTIONS, (owner, declaration)
    assert declaration.unit.strip() and declaration.about.strip(), (owner, declaration)
    assert "*" not in declaration.key[:-1], (owner, declaration)


@pytest.mark.parametrize("name", all_metrics())
def test_every_registered_metric_declares_each_key_it_reports(name, compose_cfg, tmp_path: Path):
    metric = METRICS[name]
    assert metric.reports, name
    for declaration in metric.reports:
        check_declaration(name, declaration)
    assert len(metric.reports) == 1 or all(d.key != SINGLE for d in metric.reports), name
    context = fake_context(compose_cfg, tmp_path, conditional="conditional" in metric.needs)
    assert [context.missing(need) for need in metric.needs] == [None] * len(metric.needs), (
        f"the fake context cannot serve {name}'s needs {metric.needs}; teach fake_context the new need"
    )
    result = run_metrics([name], context, {name: small_settings(name)}, strict=True)[name]
    reported = result["values"] if "values" in result else {SINGLE: result["value"]}
    # run_metrics refuses undeclared keys; every declaration is used (a misspelt one would not be)
    for declaration in metric.reports:
        assert any(declaration.matches(key) for key in reported), (name, declaration.key, sorted(reported))


def test_a_metric_without_declarations_or_with_an_undeclared_key_is_refused(compose_cfg, tmp_path: Path):
    with pytest.raises(TypeError, match="reports"):
        register_metric("undeclared")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="declare every key"):
        register_metric("undeclared", reports=[])
    with pytest.raises(ValueError, match="cannot have others"):
        register_metric(
            "undeclared", reports=[Reported("value", None, "x", "y"), Reported("a", None, "x", "y")]
        )
    with pytest.raises(ValueError, match="not 'higher', 'lower' or None"):
        Reported("a", "max", "x", "y")  # type: ignore[arg-type]

    @register_metric("half_declared", reports=[Reported("a", "higher", "score", "a number")])
    def half_declared(context: MetricContext) -> dict[str, float]:
        """Reports a key it did not declare."""
        return {"a": 1.0, "b": 2.0}

    try:
        with pytest.raises(ValueError, match=r"metric half_declared reported \['b'\], which its"):
            run_metrics(["half_declared"], fake_context(compose_cfg, tmp_path, conditional=False))
    finally:
        del METRICS["half_declared"]


def test_a_family_declares_per_factor_keys_and_an_exact_key_wins():
    family = [Reported("gap_*", "higher", "score", "per factor"), Reported("gap_shape", "lower", "s", "odd")]
    assert find(family, "gap_scale") == family[0] and find(family, "gap_shape") == family[1]
    assert find(family, "gaps") is None and find(family, "mig") is None
    assert (family[0].arrow, family[1].arrow, Reported("k", None, "nats", "a KL").arrow) == ("↑", "↓", "")


def test_every_key_of_the_test_report_is_declared(compose_cfg, tmp_path: Path):
    for declaration in (*TEST_REPORTED, *RUN_REPORTED, *PRIOR_REPORTED, *PAPER_REPORTED):
        check_declaration("results.json", declaration)
    context = fake_context(compose_cfg, tmp_path, conditional=False)
    report = evaluate(context.model, context.batches, iw_k=4, iw_chunk=2)
    assert [k for k in report if find(TEST_REPORTED, k) is None] == []
    # known directions of the numbers a leaderboard ranks
    directions = {
        k: find(TEST_REPORTED, k).better for k in ("elbo_nats", "bits_per_dim", "kl_nats", "recon_mse")
    }
    assert directions == {
        "elbo_nats": "higher",
        "bits_per_dim": "lower",
        "kl_nats": None,
        "recon_mse": "lower",
    }


def test_every_picture_says_what_it_shows_and_what_it_is_drawn_from():
    assert len(PICTURES) >= 10
    for name, picture in PICTURES.items():
        assert picture.title.strip() and picture.uses.strip(), name
        assert described(name) == (picture.title, picture.uses)
    assert described("samples") is not None and described("reconstructions") is not None
    assert described("samples_epoch003") is None  # an undeclared PNG is not guessed
    with pytest.raises(ValueError, match="title="):
        from vaezoo.visualize import picture

        picture("untitled", "nowhere", title="", uses="")


def test_the_html_report_heads_each_picture_with_its_declared_title(tmp_path: Path):
    from PIL import Image

    from tests.test_leaderboard import fake_job
    from vaezoo.reports.html import write_report

    job = fake_job(tmp_path / "0_beta=1", ["beta=1"], {"elbo_nats": -90.0})
    (job / "images").mkdir()
    for name in ("curves", "samples", "mystery"):
        Image.new("L", (4, 4)).save(job / "images" / f"{name}.png")
    page = write_report(tmp_path).read_text()
    curves, samples = PICTURES["curves"], described("samples")
    assert f"<h3>{curves.title}</h3><p class='muted'>From the job&#x27;s metrics.csv.</p>" in page
    assert f"<h3>{samples[0]}</h3>" in page
    assert "<h3>mystery.png</h3><img" in page  # an undeclared PNG keeps its file name, no guessed title
