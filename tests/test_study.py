"""The disentanglement study: its method files hold disentanglement_lib's values, the report's study
section shows the right numbers on a fake study, the rank correlation is Spearman's, and past
report.inline_pictures_max_jobs the pictures are linked instead of inlined. No training here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from benchmarks.report_size import STUDY_METHODS, write_fake_study
from vaezoo.config.schema import check_command_line
from vaezoo.errors import ConfigError
from vaezoo.paths import config_dir
from vaezoo.reports.html import write_report
from vaezoo.reports.leaderboard import leaderboard
from vaezoo.reports.study import quartiles, spearman, study_of

CONF = Path(config_dir())
#: disentanglement_lib config/unsupervised_study_v1/sweep.py: each method's swept values.
PUBLISHED = {
    "beta_vae": ("beta", [1, 2, 4, 6, 8, 16]),
    "annealed_vae": ("kl.max_capacity", [5, 10, 25, 50, 75, 100]),
    "factor_vae": ("model.gamma", [10, 20, 30, 40, 50, 100]),
    "beta_tcvae": ("model.tc_beta", [1, 2, 4, 6, 8, 10]),
    "dip_vae_i": ("model.lambda_od", [1, 2, 5, 10, 20, 50]),
    "dip_vae_ii": ("model.lambda_od", [1, 2, 5, 10, 20, 50]),
}


def model_of(method: str) -> str:
    """The model option a method file picks (its ``override /model: X`` default)."""
    defaults = yaml.safe_load((CONF / "method" / f"{method}.yaml").read_text())["defaults"]
    (model,) = [d["override /model"] for d in defaults if isinstance(d, dict) and "override /model" in d]
    return model


def methods_whose_model_exists() -> list[str]:
    """Method files whose model option is in conf/model/ (the others wait for their model's branch)."""
    return [m for m in sorted(PUBLISHED) if (CONF / "model" / f"{model_of(m)}.yaml").is_file()]


def test_every_method_file_holds_the_published_values():
    assert sorted(p.stem for p in (CONF / "method").glob("*.yaml")) == sorted(PUBLISHED)
    for method, (key, values) in PUBLISHED.items():
        study = yaml.safe_load((CONF / "method" / f"{method}.yaml").read_text())["study"]
        assert (study["method"], study["hyperparameter"], study["values"]) == (method, key, values)
        assert STUDY_METHODS[method] == (key, values)  # the benchmark's fake study says the same
    dip_i = yaml.safe_load((CONF / "method" / "dip_vae_i.yaml").read_text())["study"]
    assert dip_i["lambda_d_values"] == [10 * v for v in PUBLISHED["dip_vae_i"][1]]


@pytest.mark.parametrize("method", methods_whose_model_exists())
def test_study_index_picks_the_methods_value(method):
    key, values = PUBLISHED[method]
    for index in (0, 5):
        cfg = check_command_line(
            ["experiment=disentanglement_study", f"method={method}", f"study.index={index}"], config_dir()
        )
        assert cfg is not None
        from omegaconf import OmegaConf

        assert OmegaConf.select(cfg, key) == values[index]
        assert cfg.model.latent_dim == 10 and cfg.dataset.batch_size == 64 and cfg.optimizer.lr == 1e-4
        assert cfg.trainer.max_steps == 300_000 and cfg.model.net.channels == [32, 32, 64, 64]
    if method == "annealed_vae":
        assert (cfg.kl.gamma, cfg.kl.anneal_steps, cfg.beta) == (1000.0, 100_000, 1.0)


def test_the_sweep_is_methods_by_values_by_seeds_and_the_small_one_fits_a_laptop():
    full = yaml.safe_load((CONF / "experiment" / "disentanglement_study.yaml").read_text())
    params = full["hydra"]["sweeper"]["params"]
    assert sorted(params["method"].split(",")) == sorted(PUBLISHED)
    assert (params["study.index"], params["seed"]) == ("range(0,6)", "range(0,50)")  # 6 × 6 × 50 = 1,800
    small = check_command_line(
        ["experiment=disentanglement_study_small", "method=annealed_vae"], config_dir()
    )
    assert small is not None and small.trainer.max_steps == 3000 and small.kl.anneal_steps == 1000
    small_params = yaml.safe_load((CONF / "experiment" / "disentanglement_study_small.yaml").read_text())
    assert small_params["hydra"]["sweeper"]["params"]["study.index"] == "0,5"  # 6 × 2 × 2 = 24 jobs


def test_a_study_index_past_the_values_is_one_line():
    with pytest.raises(ConfigError, match=r"study.index=6 is out of range: method=beta_vae has 6 values"):
        check_command_line(["experiment=disentanglement_study", "study.index=6"], config_dir())


def test_spearman_on_known_cases():
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)  # 1 - 6·4 / (5·24)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [9, 4, 1, 0]) == pytest.approx(-1.0)
    # Ties share their mean rank: x ranks 1, 2.5, 2.5, 4 against 1..4 gives 4.5 / sqrt(4.5 · 5).
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / (4.5 * 5) ** 0.5)
    assert spearman([1, 1, 1], [1, 2, 3]) is None and spearman([1, 2], [2, 1]) is None


def test_the_study_section_shows_the_cells_and_their_numbers(tmp_path: Path):
    folder = write_fake_study(tmp_path / "study", 72, picture_bytes=0, seeds=2)  # 36 cells × 2 seeds
    study = study_of(leaderboard(folder))
    assert study is not None and len(study.jobs) == 72 and study.methods == list(PUBLISHED)
    assert study.values("factor_vae") == [10, 20, 30, 40, 50, 100]
    assert study.metrics == [
        "beta_vae_score/eval_accuracy",
        "factor_vae_score/eval_accuracy",
        "mig/mig",
        "dci/disentanglement",
        "dci/completeness",
        "sap",
    ]
    # One cell, read back from its two job folders: the median of two seeds is their mean.
    seeds = []
    for job in sorted(folder.glob("*_method=dip_vae_i,study.index=3,seed=*")):
        seeds.append(json.loads((job / "results.json").read_text())["metrics"]["sap"]["value"])
    assert len(seeds) == 2 and study.cell("dip_vae_i", 10.0, "sap") == seeds
    row = next(r for r in study.summary_rows() if r["method"] == "dip_vae_i" and r["value"] == 10.0)
    assert row["seeds"] == 2 and row["sap"] == pytest.approx(quartiles(seeds))
    assert row["sap"][1] == pytest.approx(sum(seeds) / 2)
    page = write_report(folder).read_text()
    assert "<h2 id='study'>Disentanglement study</h2>" in page
    assert "72 finished jobs: 6 methods, 36 method × value cells, 2 seeds" in page
    low, median, high = row["sap"]
    assert f"{median:.3f} [{low:.3f}, {high:.3f}]" in page
    rho = spearman([j.metrics["mig/mig"] for j in study.jobs], [j.metrics["sap"] for j in study.jobs])
    assert rho is not None and f"<td class='num'>{rho:.2f}</td>" in page


def test_a_sweep_that_is_no_study_has_no_study_section(tmp_path: Path):
    from tests.test_leaderboard import sweep

    assert study_of(leaderboard(sweep(tmp_path))) is None
    assert "id='study'" not in write_report(tmp_path).read_text()


def test_past_the_threshold_pictures_are_linked_not_inlined(tmp_path: Path):
    folder = write_fake_study(tmp_path / "study", 3, picture_bytes=600, seeds=3)
    inlined = write_report(folder, tmp_path / "inlined.html", inline_pictures_max_jobs=3).read_text()
    linked = write_report(folder, tmp_path / "linked.html", inline_pictures_max_jobs=2).read_text()
    assert inlined.count("src='data:image/png;base64,") == 18 and "loading='lazy'" not in inlined
    assert "img-src data:;" in inlined  # the self-contained file: nothing but data: images
    sources = re.findall(r"<img alt='[^']*' loading='lazy' src='([^']+)'>", linked)
    assert len(sources) == 18 and "src='data:image/png" not in linked
    assert all((tmp_path / s).is_file() for s in sources), sources  # relative to the report, into the jobs
    assert sources[0] == "study/0_method=beta_vae,study.index=0,seed=0/images/curves.png"
    assert "img-src data: 'self' file:;" in linked and "default-src 'none'" in linked


def test_the_sweeps_wandb_group_gets_the_studys_tables_and_figures(tmp_path: Path):
    from vaezoo.stages.sweep import study_for_wandb

    study = study_of(leaderboard(write_fake_study(tmp_path / "study", 36, picture_bytes=0, seeds=1)))
    assert study is not None
    entries = study_for_wandb(study)
    names = ["study/jobs", "study/summary", "study/rank_correlation"]
    assert sorted(entries) == sorted(
        [*names, *(f"study/{m}" for m in study.metrics), "study/rank_correlation_heatmap"]
    )
    jobs = entries["study/jobs"]
    assert len(jobs.data) == 36 and jobs.columns[:5] == ["job", "method", "hyperparameter", "value", "seed"]
    correlation = entries["study/rank_correlation"]
    assert [row[0] for row in correlation.data] == study.metrics
    assert correlation.data[0][1] == pytest.approx(1.0)
