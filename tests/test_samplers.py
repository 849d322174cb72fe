"""Latent samplers fitted after training (issue 22 item 1): known answers, safe storage, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY, run_cli
from vaezoo.errors import ConfigError, UnsafeInputError
from vaezoo.samplers import held_out_log_likelihood, load_samplers, sampler_settings
from vaezoo.samplers.store import load_sampler, save_sampler

MEANS = torch.tensor([[-4.0, 0.0], [4.0, 0.0], [0.0, 5.0]])
WEIGHTS = torch.tensor([0.5, 0.3, 0.2])


def mixture_codes(n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    component = torch.multinomial(WEIGHTS, n, replacement=True, generator=generator)
    return MEANS[component] + 0.5 * torch.randn(n, 2, generator=generator)


def banana(n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(n, generator=generator)
    return torch.stack([a, 0.5 * torch.randn(n, generator=generator) + 0.5 * a**2 - 1], 1)


def test_gmm_recovers_the_components_of_a_known_mixture():
    gmm, report = load_samplers()["gmm"].cls.fit(
        mixture_codes(3000, 0), mixture_codes(1000, 1), 0, components=[1, 2, 3, 4, 6]
    )
    assert report["components"] == 3  # held-out likelihood: more components gain nothing measurable
    means = gmm.means * gmm.scale + gmm.shift
    order = [int((means - m).norm(dim=1).argmin()) for m in MEANS]
    assert sorted(order) == [0, 1, 2]
    assert torch.allclose(means[order].float(), MEANS, atol=0.1)
    assert torch.allclose(gmm.weights[order].float(), WEIGHTS, atol=0.03)


def test_flow_beats_a_gaussian_on_a_banana():
    samplers = load_samplers()
    train, val = banana(3000, 0), banana(1000, 1)
    flow, _ = samplers["maf"].cls.fit(train, val, 0, max_epochs=30)
    gaussian, _ = samplers["gmm"].cls.fit(train, val, 0, components=[1])
    assert held_out_log_likelihood(flow, val) > held_out_log_likelihood(gaussian, val) + 0.2


def test_two_stage_samples_spread_like_the_codes_it_was_fitted_to():
    # Gaussian codes, shifted and anisotropic: the second VAE's draws (decoder mean plus its γ noise)
    # must have their mean and spread, not collapse to the centre as the decoder's mean alone does
    # while γ is large.
    generator = torch.Generator().manual_seed(0)
    mean, std = torch.tensor([2.0, -1.0]), torch.tensor([3.0, 0.5])
    codes = mean + std * torch.randn(4000, 2, generator=generator)
    second, report = load_samplers()["two_stage"].cls.fit(
        codes[:3000], codes[3000:], 0, hidden=32, max_epochs=5
    )
    torch.manual_seed(1)
    drawn = second.sample(4000).double()
    assert torch.allclose(drawn.mean(0), mean.double(), atol=0.15 * 3.0), (drawn.mean(0), report)
    assert torch.allclose(drawn.std(0), std.double(), rtol=0.2), (drawn.std(0), report)


@pytest.mark.parametrize("name", ["gmm", "maf", "two_stage"])
def test_a_stored_sampler_round_trips_and_refuses_tampering(tmp_path: Path, name: str):
    train, val = mixture_codes(400, 0), mixture_codes(100, 1)
    fast = {"gmm": {"components": [1, 3]}}.get(name, {"max_epochs": 2, "hidden": 16})
    sampler, report = load_samplers()[name].cls.fit(train, val, 0, **fast)
    save_sampler(tmp_path, sampler, report)
    loaded = load_sampler(tmp_path, name, dim=2)
    torch.manual_seed(3)
    first = sampler.sample(50)
    torch.manual_seed(3)
    assert torch.equal(first, loaded.sample(50))
    with pytest.raises(ConfigError, match="draws 2-unit codes but the job's model has 5"):
        load_sampler(tmp_path, name, dim=5)
    tensors, record = tmp_path / "samplers" / f"{name}.pt", tmp_path / "samplers" / f"{name}.json"
    data = bytearray(tensors.read_bytes())
    data[-40] ^= 1
    tensors.write_bytes(bytes(data))
    with pytest.raises(UnsafeInputError) as refused:
        load_sampler(tmp_path, name)
    assert "SHA-256" in str(refused.value) and "\n" not in str(refused.value)
    record.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ConfigError, match="is not a vaezoo sampler record"):
        load_sampler(tmp_path, name)
    record.write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_sampler(tmp_path, name)


def labelled_codes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes of three labels, each one of MEANS's clusters (a cVAE's class regions), frequencies WEIGHTS."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.multinomial(WEIGHTS, n, replacement=True, generator=generator)
    return MEANS[labels] + 0.5 * torch.randn(n, 2, generator=generator), labels


@pytest.mark.parametrize("name", ["gmm", "maf"])
def test_per_label_sampler_draws_each_label_from_its_own_codes(tmp_path: Path, name: str):
    """A conditional model's sampler: codes asked for label y land in label y's cluster; unlabelled draws
    follow the labels' frequencies; given its label a code is likelier than under the label mixture;
    stored and loaded, it draws the same codes."""
    from vaezoo.samplers import PerLabelSampler

    fast = {"gmm": {"components": [1, 2]}}.get(name, {"max_epochs": 20, "hidden": 16})
    sampler, report = PerLabelSampler.fit_per_label(
        load_samplers()[name].cls, labelled_codes(1500, 0), labelled_codes(300, 1), 3, 0, **fast
    )
    assert report["labels"] == 3 and set(report["per_label"]) == {"0", "1", "2"}
    torch.manual_seed(0)
    asked = torch.tensor([0, 1, 2]).repeat_interleave(200)
    drawn = sampler.sample(600, asked)
    nearest = torch.cdist(drawn, MEANS).argmin(1)
    assert (nearest == asked).float().mean() > 0.98, (nearest == asked).float().mean()
    free = torch.cdist(sampler.sample(4000), MEANS).argmin(1)
    assert torch.allclose(torch.bincount(free, minlength=3) / 4000.0, WEIGHTS, atol=0.04)
    codes, labels = labelled_codes(300, 2)
    assert sampler.log_prob(codes, labels).mean() > sampler.log_prob(codes).mean()
    save_sampler(tmp_path, sampler, report)
    loaded = load_sampler(tmp_path, name, dim=2)
    assert isinstance(loaded, PerLabelSampler) and loaded.name == name
    torch.manual_seed(5)
    first = sampler.sample(30, asked[::20])
    torch.manual_seed(5)
    assert torch.equal(first, loaded.sample(30, asked[::20]))


def test_unknown_sampler_or_setting_is_a_one_line_error():
    with pytest.raises(ConfigError, match="unknown sampler 'gmmm'; registered samplers: gmm, maf, two_stage"):
        sampler_settings("gmmm", {})
    with pytest.raises(ConfigError, match=r"settings\.maf has unknown keys depth"):
        sampler_settings("maf", {"depth": 3})
    with pytest.raises(ConfigError, match=r"settings.gmm.components=\[0\] is not a valid value"):
        sampler_settings("gmm", {"components": [0]})


def test_cli_fits_a_sampler_and_evaluation_runs_through_it(tmp_path: Path):
    from vaezoo.evaluation.classifier import SmallCNN, save_classifier

    data, job = tmp_path / "data", tmp_path / "job"
    judge = SmallCNN((1, 8, 8), 10, channels=(4, 8), hidden=16)  # untrained: FID only needs features
    save_classifier(judge, "digits", data, {"test_accuracy": 0.1, "command": "test"})
    args = [a for a in TINY if not a.startswith("trainer.max_epochs")]
    trained = run_cli(
        [*args, "trainer.max_epochs=1", "logger=csv", f"paths.data={data}", f"hydra.run.dir={job}"],
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    fitted = run_cli(
        [f"run={job}", "sampler=gmm", "+settings.gmm.components=[1,2]"], tmp_path, module="vaezoo.sampler"
    )
    assert fitted.returncode == 0, fitted.stderr[-3000:]
    record = json.loads((job / "samplers" / "gmm.json").read_text())
    assert record["hparams"]["dim"] == 20 and record["fit"]["components"] in (1, 2)
    assert (job / "samplers" / "gmm_samples.png").is_file()
    evaluated = run_cli(
        [
            f"run={job}",
            "eval.sampler=gmm",
            "eval.metrics=[fid]",
            "+eval.settings.fid.n_samples=200",
            "eval.test=false",
            "wandb=false",
            "pictures.n_examples=50",
            "pictures.tsne_points=20",
        ],
        tmp_path,
        module="vaezoo.evaluate",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    metrics = json.loads((job / "results.json").read_text())["metrics"]
    assert metrics["fid"]["values"]["distance"] >= 0 and metrics["fid@gmm"]["values"]["distance"] >= 0
    assert metrics["fid"]["values"]["distance"] != metrics["fid@gmm"]["values"]["distance"]
    assert (job / "images" / "sampler_samples.png").is_file()
    wrong = run_cli([f"run={job}", "sampler=flowz"], tmp_path, module="vaezoo.sampler")
    assert wrong.returncode == 2 and "unknown sampler 'flowz'" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
