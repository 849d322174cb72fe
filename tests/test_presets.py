"""Cluster and multi-GPU presets compose as documented (checked with --cfg: no cluster here); resume."""

from __future__ import annotations

import pytest
import yaml
from omegaconf import OmegaConf

from tests.conftest import run_cli
from vaezoo.errors import ConfigError
from vaezoo.jobs.resume import resume_argv


def printed(proc) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return yaml.safe_load(proc.stdout)


def test_slurm_launcher_takes_nodes_and_gpus_from_the_multinode_preset(tmp_path):
    args = ["hardware=multinode", "hardware.num_nodes=2", "hardware.devices=4", "hydra/launcher=slurm"]
    args += ["hydra.launcher.partition=gpu", "hydra.launcher.timeout_min=720"]
    launcher = printed(run_cli([*args, "--cfg", "all", "--resolve", "-p", "hydra.launcher"], cwd=tmp_path))
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (2, 4, 4)
    assert launcher["partition"] == "gpu" and launcher["timeout_min"] == 720
    hardware = printed(run_cli([*args, "--cfg", "job", "-p", "hardware"], cwd=tmp_path))
    assert hardware == {**hardware, "accelerator": "gpu", "strategy": "ddp", "devices": 4, "num_nodes": 2}


def test_ddp_presets(compose_cfg):
    from vaezoo.builder import resolve_strategy

    cfg = compose_cfg("hardware=ddp")
    assert (cfg.hardware.accelerator, cfg.hardware.devices, cfg.hardware.strategy) == ("gpu", -1, "ddp")
    cfg = compose_cfg("hardware=ddp_cpu")
    strategy = resolve_strategy(cfg.hardware)
    assert type(strategy).__name__ == "DDPStrategy" and strategy.process_group_backend == "gloo"
    assert (cfg.hardware.accelerator, cfg.hardware.devices) == ("cpu", 2)


def test_multinode_outside_a_cluster_environment_is_refused(compose_cfg, monkeypatch):
    from vaezoo.builder import resolve_strategy

    for var in ("SLURM_NTASKS", "SLURM_JOB_NAME", "TORCHELASTIC_RUN_ID", "NODE_RANK"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="started by SLURM"):
        resolve_strategy(compose_cfg("hardware=multinode").hardware)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "1")  # what torchrun sets, with RANK, WORLD_SIZE, ...
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "16")
    monkeypatch.setenv("MASTER_ADDR", "node0")
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert resolve_strategy(compose_cfg("hardware=multinode").hardware) == "ddp"


def test_resume_expands_to_the_jobs_own_overrides_in_its_folder(tmp_path):
    job = tmp_path / "0_beta=4,dataset=digits"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(["beta=4", "dataset=digits"]))
    with pytest.raises(ConfigError, match=r"no checkpoints/last\.ckpt"):
        resume_argv([f"resume={job}"])
    (job / "checkpoints").mkdir()
    (job / "checkpoints" / "last.ckpt").write_bytes(b"")
    args = resume_argv([f"resume={job}", "trainer.max_epochs=20"])
    assert args == [
        "beta=4",
        "dataset=digits",
        "trainer.max_epochs=20",
        f"resume='{job}'",
        f"hydra.run.dir='{job}'",
        "hydra.output_subdir=null",  # .hydra/ is rewritten only once the resumed run has loaded
    ]
    with pytest.raises(ConfigError, match="drop -m"):
        resume_argv([f"resume={job}", "-m"])
    with pytest.raises(ConfigError, match="not found"):
        resume_argv([f"resume={tmp_path}"])
    assert resume_argv(["beta=2"]) == ["beta=2"]
