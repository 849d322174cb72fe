"""The speed features behave (no timings here: speed is the benchmark's job, python -m benchmarks)."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import TINY
from vaezoo.builder import model_params
from vaezoo.data.info import DataInfo
from vaezoo.errors import ConfigError
from vaezoo.likelihoods import Bernoulli, DiscretizedLogistic, Gaussian
from vaezoo.models import MODELS, build_model
from vaezoo.objective import Objective
from vaezoo.stages.train import train
from vaezoo.training.hardware import (
    HardwareTuning,
    hardware_callbacks,
    has_conv,
    set_threads,
    to_channels_last,
)

COLOUR = DataInfo("colour", (3, 32, 32), 256, 10, train_size=1000)


def _model(compose_cfg, family: str, info: DataInfo, likelihood, conv: bool = True):
    """A registered family built from its conf/model YAML (conv networks where the family has ``net``)."""
    cfg = compose_cfg(f"model={family}")
    overrides = [f"model={family}"]
    if conv and "net" in cfg.model:
        overrides.append("model/net=conv")
    cfg = compose_cfg(*overrides)
    params = model_params(cfg.model)
    likelihood.check_data(info, "test")
    return build_model(family, params, info, likelihood)


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("model", ["vanilla", "hvae"])  # hvae also logs its gradient-skip metrics
def test_train_metrics_reach_the_logger_at_the_configured_cadence_only(compose_cfg, model):
    """Train metrics are computed for the logger only on logging steps, and still logged on every one."""
    cfg = compose_cfg(
        *TINY, f"model={model}", "logger=csv", "trainer.log_every_n_steps=3", "trainer.max_epochs=2"
    )
    report = train(cfg)
    rows = _rows(f"{report['job_dir']}/metrics.csv")
    train_steps = sorted(int(r["step"]) for r in rows if r.get("train/loss"))
    expected = [s for s in range(report["steps"]) if (s + 1) % 3 == 0]
    assert train_steps == expected
    keys = ["train/elbo", "train/log_px_z", "train/kl", "train/kl/beta"]
    keys += ["train/grad_norm", "train/skipped_updates"] if model == "hvae" else []
    for key in keys:
        assert all(r[key] for r in rows if r.get("train/loss")), key
        assert not any(r[key] for r in rows if not r.get("train/loss") and not r.get("val/elbo")), key
    assert sum(1 for r in rows if r.get("val/elbo")) == 2  # one validation row per epoch


def test_progress_bar_loss_lives_on_the_host(compose_cfg):
    """The progress bar's loss is a CPU tensor, so showing it after every step needs no device sync."""
    import lightning as L

    from vaezoo.data import build_datamodule
    from vaezoo.training import VAEModule

    dm = build_datamodule(name="digits", binarize="dynamic", val_size=150, batch_size=64)
    model = _model(compose_cfg, "vanilla", dm.info, Bernoulli(), conv=False)
    module = VAEModule(model, Objective())
    seen = []

    class Spy(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.extend(v.value.device.type for v in trainer._results.values() if v.meta.prog_bar)

    trainer = L.Trainer(
        accelerator="cpu", max_epochs=1, limit_train_batches=4, limit_val_batches=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=True, log_every_n_steps=2, callbacks=[Spy()],
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    assert seen and set(seen) == {"cpu"}
    assert "loss" in trainer.progress_bar_metrics


def test_gpu_hardware_config_turns_on_channels_last_and_compile_when_asked(compose_cfg):
    gpu = compose_cfg("hardware=gpu", "hardware.compile=true", "hardware.compile_mode=max-autotune").hardware
    (tuning,) = hardware_callbacks(gpu, accelerator="gpu")
    assert isinstance(tuning, HardwareTuning)
    assert tuning.channels_last and tuning.compile and tuning.compile_mode == "max-autotune"
    assert compose_cfg("hardware=gpu").hardware.precision is None  # resolve_hardware picks bf16-mixed on GPUs
    assert hardware_callbacks(compose_cfg("hardware=cpu").hardware, accelerator="cpu") == []
    # hardware=auto on a machine without a GPU: channels-last is for GPUs only, nothing to apply.
    assert hardware_callbacks(compose_cfg("hardware=auto").hardware, accelerator="cpu") == []


def test_channels_last_converts_conv_weights_and_keeps_the_results(compose_cfg):
    model = _model(compose_cfg, "vanilla", COLOUR, DiscretizedLogistic()).eval()
    x = torch.randint(0, 256, (4, 3, 32, 32)).float() / 255
    before = model.reconstruct(x)
    assert has_conv(model) and to_channels_last(model)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    torch.testing.assert_close(model.reconstruct(x), before, rtol=1e-4, atol=1e-4)
    mlp = _model(compose_cfg, "vanilla", COLOUR, DiscretizedLogistic(), conv=False)
    assert not to_channels_last(mlp)


@pytest.mark.parametrize("family", sorted(MODELS))
@pytest.mark.parametrize("likelihood", [DiscretizedLogistic, Gaussian])
def test_bf16_autocast_keeps_likelihood_and_kl_sums_in_fp32(compose_cfg, family, likelihood):
    """Under bf16 autocast (what precision=bf16-mixed does) the per-example sums stay float32 and close."""
    torch.manual_seed(0)
    model = _model(compose_cfg, family, COLOUR, likelihood())
    x = torch.randint(0, 256, (8, 3, 32, 32)).float() / 255
    y = torch.randint(0, 10, (8,))
    torch.manual_seed(1)
    ref = model.elbo_terms(x, y)
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = model.elbo_terms(x, y)
        loss = Objective()(model, x, y, 0).loss
    assert terms.log_px_z.dtype == torch.float32
    assert all(kl.dtype == torch.float32 for kl in terms.kl.values())
    assert loss.dtype == torch.float32
    # bf16 networks perturb the parameters of p(x|z), not the summation: within a few percent.
    torch.testing.assert_close(terms.elbo, ref.elbo, rtol=0.05, atol=5.0)


def test_compile_wraps_the_step_math_and_keeps_the_state_dict(compose_cfg):
    model = _model(compose_cfg, "vanilla", COLOUR, Gaussian(), conv=False)
    keys, eager = list(model.state_dict()), model.elbo_terms
    tuning = HardwareTuning(compile=True, compile_backend="eager")
    tuning.setup(None, SimpleNamespace(model=model), "fit")  # type: ignore[arg-type]
    assert model.elbo_terms._torchdynamo_orig_callable == eager  # torch.compile's wrapper around it
    x = torch.rand(4, 3, 32, 32)
    terms = model.elbo_terms(x)
    assert terms.elbo.shape == (4,) and torch.isfinite(terms.elbo).all()
    assert list(model.state_dict()) == keys
    with pytest.raises(ConfigError, match="compile_mode"):
        HardwareTuning(compile=True, compile_mode="fastest").setup(None, SimpleNamespace(model=model), "fit")  # type: ignore[arg-type]


def test_flush_denormal_makes_denormal_floats_zero():
    """hardware.flush_denormal (on in every preset) turns x86 FTZ/DAZ on; off restores IEEE denormals."""
    from vaezoo.training.hardware import apply_process_settings

    try:
        apply_process_settings(OmegaConf.create({"num_threads": None, "flush_denormal": False}))
        tiny = torch.tensor([1e-39])  # a float32 denormal (made with flushing off: it would be 0)
        assert (tiny * 1.0).item() > 0.0
        apply_process_settings(OmegaConf.create({"num_threads": None, "flush_denormal": True}))
        assert (tiny * 1.0).item() == 0.0
    finally:
        torch.set_flush_denormal(False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="only drops the NVML check where no CUDA device exists")
def test_without_a_cuda_device_the_availability_check_skips_nvml(monkeypatch):
    """Lightning's NVML-based check loads a library on every Adam step; without a device it is dropped."""
    import os

    from vaezoo.training.hardware import skip_nvml_availability_check

    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    skip_nvml_availability_check()
    assert "PYTORCH_NVML_BASED_CUDA_CHECK" not in os.environ
    assert torch.cuda.is_available() is False


def test_gradient_clipping_defaults_to_off_except_where_a_model_needs_it(compose_cfg):
    assert compose_cfg().optimizer.clip_norm is None
    assert compose_cfg("model=beta_vae").optimizer.clip_norm is None
    assert compose_cfg("model=hvae").optimizer.clip_norm == 100.0
    assert compose_cfg("model=vqvae").optimizer.clip_norm == 100.0
    assert compose_cfg("model=vqvae", "optimizer.clip_norm=null").optimizer.clip_norm is None


def test_every_hardware_preset_flushes_denormals(compose_cfg):
    from tests.test_config import options

    for option in options("hardware"):
        assert compose_cfg(f"hardware={option}").hardware.flush_denormal is True, option


def test_bad_thread_count_is_a_config_error():
    with pytest.raises(ConfigError, match="num_threads"):
        set_threads(0)


def test_benchmark_runs_a_small_cell_and_writes_json(tmp_path):
    """The benchmark end to end on one small cell (synthetic colour input, a few steps)."""
    from benchmarks.run import main

    out = tmp_path / "bench.json"
    args = ["--families", "beta_vae", "--inputs", "colour32", "--repeats", "1", "--window-steps", "1"]
    args += ["--warmup-steps", "0", "--iw-k", "2", "--iw-images", "8", "--data-root", str(tmp_path / "none")]
    assert main([*args, "--out", str(out), "--batch-size", "16"]) == 0
    report = json.loads(out.read_text())
    (cell,) = report["cells"]
    assert cell["status"] == "ok" and "synthetic" in cell["input_note"]
    from vaezoo.data.sources import SOURCES

    assert not any("synthetic" in name for name in SOURCES)  # the benchmark adds nothing to the product
    for path in ("vaezoo", "bare", "tutorial"):
        assert cell[path]["images_per_second"] > 0 and cell[path]["timed_steps"] == [1]
    assert cell["ratios"]["vaezoo_over_bare"] > 0
    assert cell["iw"]["k"] == 2 and cell["iw"]["seconds"] > 0 and cell["iw"]["extrapolated"]
    assert all(t["met"] is None for t in report["targets"])  # the headline cell was not asked for
