"""W&B as its users expect: WANDB_MODE is honoured, an unreachable server falls back to offline fast."""

from __future__ import annotations

from datetime import datetime

from tests.conftest import TINY, run_cli
from tests.test_bad_inputs import UNREACHABLE_WANDB


def test_wandb_mode_comes_from_the_environment_unless_given(compose_cfg, monkeypatch):
    assert compose_cfg().logger.mode == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert compose_cfg().logger.mode == "disabled"
    assert compose_cfg("logger.mode=offline").logger.mode == "offline"


def test_unreachable_online_run_falls_back_to_offline_within_30_seconds(tmp_path, compose_cfg):
    assert compose_cfg().logger.init_timeout < 30  # the default wait, before the one warning
    job = tmp_path / "job"
    proc = run_cli(
        [
            *TINY,
            "trainer.max_epochs=1",
            "logger.mode=online",
            "logger.init_timeout=5",
            f"hydra.run.dir={job}",
        ],
        cwd=tmp_path,
        **UNREACHABLE_WANDB,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = [
        line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if "logging offline" in line
    ]
    assert len(warnings) == 1 and "wandb sync" in warnings[0]
    assert (job / "results.json").is_file() and list((job / "wandb").glob("offline-run-*"))
    # From the online attempt (its folder's timestamp) to the warning (the log line's timestamp).
    (attempt,) = (job / "wandb").glob("run-*")
    tried = datetime.strptime(attempt.name.split("-")[1], "%Y%m%d_%H%M%S")
    warned = datetime.strptime(warnings[0][1:20], "%Y-%m-%d %H:%M:%S")
    assert 0 <= (warned - tried).total_seconds() <= 5 + 2
