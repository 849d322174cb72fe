"""The report's sample-quality section: sample metrics through the prior and each fitted sampler."""

from __future__ import annotations

from pathlib import Path

from tests.test_leaderboard import fake_job
from vaezoo.reports.html import write_report
from vaezoo.reports.leaderboard import leaderboard
from vaezoo.reports.samples import PRIOR, sample_tables, samples_markdown
from vaezoo.stages.table import main as table_main

BASE = {"elbo_nats": -25.0, "iw_bound_nats": -24.0, "log_px_z_nats": -20.0, "kl_nats": 5.0}


def fid(distance: float) -> dict:
    return {"values": {"distance": distance, "samples": 100, "test_images": 100}}


def accuracy(value: float) -> dict:
    return {"values": {"accuracy": value, "per_class": [value] * 10}}


def samplers_sweep(tmp_path: Path) -> Path:
    fake_job(
        tmp_path / "0_model=vanilla",
        ["model=vanilla"],
        BASE,
        {"fid": fid(300.0), "fid@gmm": fid(120.0), "fid@maf": fid(150.0)},
    )
    fake_job(  # conditional accuracy is higher-is-better: the sampler that raises it wins
        tmp_path / "1_model=cvae",
        ["model=cvae"],
        BASE,
        {
            "fid": fid(110.0),
            "fid@gmm": fid(130.0),
            "conditional_accuracy": accuracy(0.9),
            "conditional_accuracy@gmm": accuracy(0.95),
        },
    )
    fake_job(tmp_path / "2_model=hvae", ["model=hvae"], BASE, {"sap": {"value": 0.2}})  # no sample metric
    return tmp_path


def test_tables_pair_the_prior_with_each_sampler_and_rank_by_the_declared_direction(tmp_path: Path):
    tables = {(t.metric, t.key): t for t in sample_tables(leaderboard(samplers_sweep(tmp_path)))}
    assert set(tables) == {("fid", "distance"), ("conditional_accuracy", "accuracy")}
    fid_table = tables["fid", "distance"]
    assert fid_table.samplers == [PRIOR, "gmm", "maf"] and len(fid_table.jobs) == 2  # hvae has none
    vanilla, cvae = fid_table.values
    assert vanilla == {PRIOR: 300.0, "gmm": 120.0, "maf": 150.0} and cvae["maf"] is None
    # lower FID is better: gmm wins for vanilla (gain 180), the prior for the cVAE (gain -20)
    assert (fid_table.best(vanilla), fid_table.gain(vanilla)) == ("gmm", 180.0)
    assert (fid_table.best(cvae), fid_table.gain(cvae)) == (PRIOR, -20.0)
    acc = tables["conditional_accuracy", "accuracy"]
    (row,) = acc.values
    assert acc.best(row) == "gmm" and abs(acc.gain(row) - 0.05) < 1e-12


def test_report_and_markdown_show_the_section_only_when_a_sampler_ran(tmp_path: Path, capsys):
    page = write_report(samplers_sweep(tmp_path / "with")).read_text()
    assert "<h2 id='samples'>Samples: prior and fitted samplers</h2>" in page
    assert "<td class='best'>120.00</td>" in page and "<td>+180.00</td>" in page
    text = samples_markdown(leaderboard(tmp_path / "with"))
    assert "| 0_model=vanilla (model=vanilla) | 300.00 | **120.00** | 150.00 | +180.00 |" in text
    assert table_main([str(tmp_path / "with")]) == 0
    assert "| job | prior | gmm | maf | gain |" in capsys.readouterr().out
    fake_job(tmp_path / "without" / "0_beta=1", ["beta=1"], BASE, {"fid": fid(40.0)})
    assert "id='samples'" not in write_report(tmp_path / "without").read_text()
    assert samples_markdown(leaderboard(tmp_path / "without")) == ""
