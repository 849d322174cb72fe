"""Configs that mirror objects: options set what they need where Hydra composes it, groups share keys.

Model options set the run defaults they need (beta, optimizer.clip_norm) beside ``model:``; dataset
options bring their likelihood and eval.metrics; every group's options share one ``_base``; presets
inherit from ``_`` bases; old keys are refused with their new place, and old job folders still read.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

import vaezoo.config.schema as schema
from tests.conftest import run_cli
from tests.standins import class_images, write_folder
from vaezoo.__main__ import check_group_choices
from vaezoo.builder import model_params
from vaezoo.config.options import compose_group, group_options
from vaezoo.config.schema import check_command_line
from vaezoo.errors import ConfigError
from vaezoo.jobs.folder import Job, read_job_config
from vaezoo.paths import config_dir, config_groups_text

CONF = Path(config_dir())
GROUPS = ("model", "dataset", "likelihood", "kl", "hardware", "logger", "experiment")


def checked(*overrides: str):
    """The composed and validated config of ``python -m vaezoo <overrides>`` (ConfigError if refused)."""
    cfg = check_command_line(list(overrides), config_dir())
    assert cfg is not None
    return cfg


# --- every option of a group has the same keys ---------------------------------------------------------
@pytest.mark.parametrize("group", ["hardware", "logger"])
def test_every_option_of_a_settings_group_has_the_same_keys(group):
    base = set(OmegaConf.load(CONF / group / "_base.yaml"))
    for option in group_options(group):
        assert set(compose_group(group, option)) == base, option


@pytest.mark.parametrize("group", ["dataset", "kl"])
def test_every_option_of_a_target_group_has_the_base_keys(group):
    base = set(OmegaConf.load(CONF / group / "_base.yaml"))
    for option in group_options(group):
        assert base <= set(compose_group(group, option)), option


def test_ddp_takes_the_thread_count_like_every_hardware_option():
    cfg = checked("hardware=ddp", "hardware.num_threads=4")
    assert cfg.hardware.num_threads == 4 and cfg.hardware.strategy == "ddp"


def test_base_files_are_never_offered_as_options():
    assert not any(o.startswith("_") for g in GROUPS for o in group_options(g))
    assert "_base" not in config_groups_text() and "hardware: auto, cpu, ddp" in config_groups_text()
    assert "unknown hardware '_base'" in check_group_choices(["hardware=_base"], CONF)
    assert "unknown experiment '_mnist'" in check_group_choices(["experiment=_mnist"], CONF)


# --- a model sets its own run defaults ---------------------------------------------------------------
def test_model_options_set_beta_and_clip_norm_where_hydra_composes_them():
    assert checked().beta == 1.0
    beta_vae = checked("model=beta_vae")
    assert beta_vae.beta == 4.0 and beta_vae.kl.beta == 4.0
    assert checked("model=beta_vae", "beta=8").kl.beta == 8
    hvae = checked("model=hvae")
    assert (hvae.optimizer.clip_norm, hvae.optimizer.grad_skip_threshold) == (100.0, 5000.0)
    assert checked("model=vqvae").optimizer.clip_norm == 100.0
    assert checked("model=vanilla").optimizer.clip_norm is None
    assert checked("model=hvae", "optimizer.clip_norm=5").optimizer.clip_norm == 5


def test_the_model_node_is_the_constructor_and_nothing_is_stripped_but_its_name():
    assert not hasattr(schema, "MODEL_META_KEYS")
    for option in group_options("model"):
        cfg = checked(f"model={option}")
        params = model_params(cfg.model)
        assert set(params) == set(cfg.model) - {"name"}
        assert not {"default_beta", "clip_norm", "grad_skip_threshold"} & set(params)


def test_capacity_composes_with_beta_vae_and_refuses_only_an_explicit_beta():
    cfg = checked("model=beta_vae", "kl=capacity")
    assert cfg.beta == 1.0 and cfg.kl.beta == 1.0
    with pytest.raises(ConfigError, match=r"beta=3 would be ignored; drop the beta override"):
        checked("model=beta_vae", "kl=capacity", "beta=3")


# --- a dataset brings its likelihood and metrics -----------------------------------------------------
@pytest.mark.parametrize(
    ("dataset", "likelihood"),
    [
        ("mnist", "Bernoulli"),
        ("digits", "Bernoulli"),
        ("dsprites", "Bernoulli"),
        ("fashion_mnist", "DiscretizedLogistic"),
        ("cifar10", "DiscretizedLogistic"),
        ("celeba", "DiscretizedLogistic"),
        ("image_folder", "DiscretizedLogistic"),
    ],
)
def test_a_dataset_brings_the_likelihood_its_pixels_need(dataset, likelihood):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        composed = compose("config", overrides=[f"dataset={dataset}"])
        named = compose("config", overrides=[f"dataset={dataset}", "likelihood=gaussian"])
    assert composed.likelihood._target_ == f"vaezoo.likelihoods.{likelihood}"
    assert named.likelihood._target_ == "vaezoo.likelihoods.Gaussian"  # the user's choice wins


def test_a_dataset_sets_its_metrics_and_a_preset_its_likelihood_over_the_datasets():
    assert list(checked("dataset=dsprites").eval.metrics)[1:] == [
        "mig",
        "dci",
        "sap",
        "beta_vae_score",
        "factor_vae_score",
        "gaussian_total_correlation",
        "wasserstein_correlation",
        "mutual_info_score",
    ]
    assert (checked("dataset=dsprites").eval.iw_k, checked("dataset=dsprites").eval.max_examples) == (
        100,
        1000,
    )
    assert list(checked("dataset=dsprites", "eval.metrics=[kl_per_dim]").eval.metrics) == ["kl_per_dim"]
    assert checked("experiment=repro_vqvae_cifar10").likelihood._target_.endswith(".DiscretizedLogistic")


def test_image_folder_of_grey_pngs_trains_without_naming_a_likelihood(tmp_path):
    images, labels = class_images(20, size=8)
    folder = write_folder(tmp_path / "grey", images[..., 0], labels)
    quick = ["hardware=cpu", "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "logger=none"]
    quick += ["eval.iw_k=2", "eval.iw_chunk=2", "images.n_images=4", "pictures.enabled=false"]
    proc = run_cli(
        ["dataset=image_folder", f"dataset.path={folder}", *quick, "hydra.run.dir=job"], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    stored = read_job_config(tmp_path / "job" / "config.yaml")
    assert stored.likelihood._target_ == "vaezoo.likelihoods.DiscretizedLogistic"
    assert (tmp_path / "job" / "results.json").is_file()


# --- presets inherit -----------------------------------------------------------------------------------
def test_presets_inherit_their_shared_protocol_and_override_it():
    vae1, lvae, zoo = (
        checked("experiment=repro_iwae_vae1"),
        checked("experiment=repro_lvae"),
        checked("experiment=zoo_mnist"),
    )
    for cfg in (vae1, lvae):  # from experiment/_mnist_nll.yaml
        assert (cfg.eval.iw_k, cfg.paper.metric, cfg.paper.k, cfg.dataset.name) == (
            5000,
            "iw_bound_nats",
            5000,
            "mnist",
        )
    assert vae1.paper.value == -86.76 and lvae.paper.value == -81.74
    assert vae1.kl._target_.endswith(".ConstantBeta") and lvae.kl._target_.endswith(
        ".Cyclical"
    )  # its own wins
    assert zoo.eval.iw_k == 1000 and zoo.likelihood._target_.endswith(".Bernoulli")


# --- keys that moved -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "new_place"),
    [
        ("model.default_beta=2", "set beta instead"),
        ("+model.default_beta=2", "set beta instead"),
        ("model.clip_norm=5", "set optimizer.clip_norm instead"),
        ("+model.grad_skip_threshold=5", "set optimizer.grad_skip_threshold instead"),
        ("+dataset.eval_metrics=[fid]", "set eval.metrics instead"),
    ],
)
def test_a_moved_key_is_refused_naming_its_new_place(override, new_place):
    key = override.lstrip("+").split("=")[0]
    with pytest.raises(ConfigError, match=rf"^{key} has moved: {new_place}"):
        checked("dataset=digits", override)


def test_an_old_job_folder_with_the_old_keys_still_reads(tmp_path):
    cfg = OmegaConf.to_container(checked("model=hvae", "dataset=digits"), resolve=True)
    cfg.pop("hydra", None)
    cfg["model"].update(default_beta=1.0, clip_norm=100.0, grad_skip_threshold=5000.0)
    cfg["dataset"]["eval_metrics"] = ["kl_per_dim"]
    job = tmp_path / "old_job"
    (job / ".hydra").mkdir(parents=True)
    (job / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))
    read = Job(job).config
    assert "default_beta" not in read.model and "clip_norm" not in read.model
    assert "eval_metrics" not in read.dataset and read.optimizer.clip_norm == 100.0
    assert set(model_params(read.model)) == {"net", "num_layers", "latent_dim", "width", "logvar_bound"}
    schema.validate(read)  # what the builder checks before building the old job's model
