"""Config composition: every group option composes, bad names and bad combinations are rejected."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from tests.conftest import run_cli
from vaezoo.__main__ import check_group_choices
from vaezoo.config.options import group_options
from vaezoo.paths import config_dir

CONF = Path(config_dir())


def options(group: str) -> list[str]:
    return group_options(group)


@pytest.mark.parametrize("group", ["model", "dataset", "likelihood", "kl", "hardware", "logger"])
def test_every_option_of_every_group_composes(compose_cfg, group):
    for option in options(group):
        cfg = compose_cfg(f"{group}={option}")
        assert cfg.hydra.runtime.choices[group] == option


def test_every_kl_and_likelihood_option_instantiates(compose_cfg):
    for option in options("kl"):
        cfg = compose_cfg(f"kl={option}")
        regulariser = instantiate(cfg.kl)
        regulariser.set_total_steps(1000)
        assert regulariser.weight(0) >= 0
    for option in options("likelihood"):
        cfg = compose_cfg(f"likelihood={option}")
        assert instantiate(cfg.likelihood).out_channels(1) >= 1


def test_beta_is_top_level_and_beta_vae_defaults_to_four(compose_cfg):
    assert compose_cfg().beta == 1.0
    assert compose_cfg("model=beta_vae").beta == 4.0
    cfg = compose_cfg("model=beta_vae", "beta=8")
    assert cfg.beta == 8.0 and cfg.kl.beta == 8.0


def test_data_root_comes_from_the_environment(compose_cfg, monkeypatch):
    monkeypatch.setenv("VAEZOO_DATA", "/somewhere/data")
    assert compose_cfg().dataset.root == "/somewhere/data"


def test_group_precheck_names_the_bad_option_and_the_choices():
    message = check_group_choices(["model=vanila", "beta=4"], CONF)
    assert message == "vaezoo: unknown model 'vanila'; choose one of: " + ", ".join(options("model"))
    assert check_group_choices(["model=vanilla,beta_vae", "dataset=digits"], CONF) is None
    assert "likelihood 'poisson'" in check_group_choices(["likelihood=bernoulli,poisson"], CONF)


# Config mistakes refused before torch is imported; the catalogue of tests/test_bad_inputs.py holds the
# rest (missing data, hardware=gpu without CUDA, Trainer arguments with a vaezoo setting instead).
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["model=nope"], "unknown model 'nope'"),
        (["dataset=imagenet"], "unknown dataset 'imagenet'"),
        (["likelihood=poisson"], "unknown likelihood 'poisson'"),
        (["dataset=digits", "dataset.binarize=none"], "likelihood=bernoulli needs binary pixels"),
        (["dataset=digits", "kl=capacity", "beta=4"], "beta=4 would be ignored"),
        (["dataset=digits", "optimizer.clip_norm=0"], "optimizer.clip_norm=0 is out of range"),
    ],
)
def test_bad_input_gives_one_line_error_and_nonzero_exit(tmp_path, args, expected):
    proc = run_cli(
        [
            *args,
            "hardware=cpu",
            "logger=none",
            f"paths.data={tmp_path}/data",
        ],
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0]


def test_cfg_job_prints_the_composed_config_without_running(tmp_path):
    proc = run_cli(
        ["--cfg", "job", "--resolve", "model=beta_vae", "dataset=digits"], cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "name: beta_vae" in proc.stdout and "beta: 4.0" in proc.stdout
    assert not (tmp_path / "runs").exists()


def test_help_lists_the_config_groups(tmp_path):
    proc = run_cli(["--help"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 0
    for group in ("model:", "dataset:", "likelihood:", "kl:", "hardware:", "logger:", "experiment:"):
        assert group in proc.stdout
