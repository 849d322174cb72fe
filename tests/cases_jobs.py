"""Bad-input cases: job folders someone sends you (issue 19, items 1 and 3).

A job folder is data: no ``_target_`` read from it may name anything but the class vaezoo builds at
that place (dict-valued overrides and module-attribute gadgets such as ``vaezoo.data.arrays.np.load``
included), stored overrides may not change Hydra's settings, run.json is checked, and a job reads
only its own checkpoints, found by name in its own folder. Each gadget points ``numpy.load`` with
``allow_pickle`` at a crafted ``payload.npy`` in the job folder whose pickle would write the marker
file: the catalogue asserts the marker never appears (and that the folder is unchanged).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from tests.bad_input_case import MARKER, Case

PAYLOAD = "payload.npy"
ATTRIBUTE_GADGET = "vaezoo.data.arrays.np.load"  # Hydra follows the module attribute to numpy.load


class WritesMarkerWhenUnpickled:
    """Unpickling this runs ``open(path, 'w')``: what a crafted object array would do."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('ran')",))


def write_payload(job: Path) -> Path:
    """``payload.npy``: an object array whose unpickling writes ``job/MARKER``."""
    path = job / PAYLOAD
    np.save(path, np.array([WritesMarkerWhenUnpickled(str(job / MARKER))], dtype=object), allow_pickle=True)
    return path


def add_overrides(*lines: Callable[[Path], str]) -> Callable[[Path, Path], None]:
    """Append overrides (each made from the job folder) to the job's .hydra/overrides.yaml."""

    def prepare(job: Path, data: Path) -> None:
        write_payload(job)
        stored = job / ".hydra" / "overrides.yaml"
        overrides = yaml.safe_load(stored.read_text()) + [line(job) for line in lines]
        stored.write_text(yaml.safe_dump(overrides))

    return prepare


def dict_override(target: str) -> Callable[[Path], str]:
    return lambda job: f"+callbacks.x={{_target_: {target}, file: '{job / PAYLOAD}', allow_pickle: true}}"


def edit_config(section: str, node: Callable[[Path], dict]) -> Callable[[Path, Path], None]:
    """Replace (or add) one section of the job's config.yaml."""

    def prepare(job: Path, data: Path) -> None:
        write_payload(job)
        config = job / "config.yaml"
        cfg = yaml.safe_load(config.read_text())
        cfg[section] = node(job)
        config.write_text(yaml.safe_dump(cfg))

    return prepare


def numpy_load(target: str) -> Callable[[Path], dict]:
    return lambda job: {"_target_": target, "file": str(job / PAYLOAD), "allow_pickle": True}


def best_checkpoint_elsewhere(job: Path, data: Path) -> None:
    """last.ckpt names as its best checkpoint a file of another job that this folder lacks."""
    set_checkpoint_state(job, "best_model_path", "/elsewhere/runs/other-job/checkpoints/best-epoch007.ckpt")


def set_checkpoint_state(job: Path, key: str, value: str) -> None:
    import torch

    path = job / "checkpoints" / "last.ckpt"
    state = torch.load(path, weights_only=True)
    for name, callback in state["callbacks"].items():
        if name.startswith("ModelCheckpoint") and callback.get("best_model_path"):
            callback[key] = value
    torch.save(state, path)


def foreign_best_checkpoint(job: Path, data: Path) -> None:
    """The best checkpoint in the folder was written by another job (same shapes, another job id)."""
    import torch

    for path in (job / "checkpoints").glob("best-*.ckpt"):
        state = torch.load(path, weights_only=True)
        state["vaezoo_job_id"] = "0therjob"
        torch.save(state, path)


def escaping_run_record(job: Path, data: Path) -> None:
    """run.json whose W&B id would name a folder outside the job's."""
    (job / "run.json").write_text('{"wandb_id": "../../escape", "name": "x", "group": null, "resumed": 0}')


REFUSED = ("refusing", "do not use this job folder")


def on_stage(stage: str) -> list[str]:
    return [stage, "run={copy}"]


CASES: list[Case] = [
    # 1. a dict-valued override in .hydra/overrides.yaml (never seen by the old key-suffix check)
    Case(
        "resume-dict-override-numpy-load",
        ["resume={copy}"],
        (*REFUSED, "callbacks.x._target_=numpy.load", "registry"),
        prepare=add_overrides(dict_override("numpy.load")),
    ),
    Case(
        "reproduce-dict-override-numpy-load",
        ["reproduce={copy}"],
        (*REFUSED, "callbacks.x._target_=numpy.load"),
        prepare=add_overrides(dict_override("numpy.load")),
    ),
    # 2. a module attribute under vaezoo. (passed the old prefix check), in overrides.yaml
    Case(
        "resume-dict-override-attribute-gadget",
        ["resume={copy}"],
        (*REFUSED, f"callbacks.x._target_={ATTRIBUTE_GADGET}"),
        prepare=add_overrides(dict_override(ATTRIBUTE_GADGET)),
    ),
    Case(
        "reproduce-dict-override-attribute-gadget",
        ["reproduce={copy}"],
        (*REFUSED, f"callbacks.x._target_={ATTRIBUTE_GADGET}"),
        prepare=add_overrides(dict_override(ATTRIBUTE_GADGET)),
    ),
    Case(
        "resume-key-override-attribute-gadget",
        ["resume={copy}"],
        (*REFUSED, f"likelihood._target_={ATTRIBUTE_GADGET}", "vaezoo.likelihoods.Bernoulli"),
        prepare=add_overrides(
            lambda job: f"likelihood._target_={ATTRIBUTE_GADGET}",
            lambda job: f"+likelihood.file='{job / PAYLOAD}'",
            lambda job: "+likelihood.allow_pickle=true",
        ),
    ),
    Case(
        "reproduce-override-builder-os-system",
        ["reproduce={copy}"],
        (*REFUSED, "callbacks.x._target_=vaezoo.builder.os.system"),
        prepare=add_overrides(lambda job: "+callbacks.x._target_=vaezoo.builder.os.system"),
    ),
    # 3. the same gadget in config.yaml: read as data by resume and reproduce, built by evaluate and prior
    *[
        Case(
            f"{name}-config-attribute-gadget",
            args,
            (*REFUSED, f"likelihood._target_={ATTRIBUTE_GADGET}"),
            prepare=edit_config("likelihood", numpy_load(ATTRIBUTE_GADGET)),
            module=module,
        )
        for name, args, module in (
            ("resume", ["resume={copy}"], "vaezoo"),
            ("reproduce", ["reproduce={copy}"], "vaezoo"),
            ("evaluate", on_stage("evaluate"), "tests.stage_cli"),
            ("prior", on_stage("prior"), "tests.stage_cli"),
        )
    ],
    *[
        Case(
            f"{stage}-config-callback-numpy-load",
            on_stage(stage),
            (*REFUSED, "callbacks.x._target_=numpy.load", "registry"),
            prepare=edit_config("callbacks", lambda job: {"x": numpy_load("numpy.load")(job)}),
            module="tests.stage_cli",
        )
        for stage in ("evaluate", "prior")
    ],
    # Hydra's own settings (search path, logging, environment) are never a job's overrides
    Case(
        "resume-stored-hydra-searchpath",
        ["resume={copy}"],
        (*REFUSED, "hydra.searchpath"),
        prepare=add_overrides(lambda job: f"hydra.searchpath=[file://{job}]"),
    ),
    Case(
        "resume-run-json-escaping-id",
        ["resume={copy}"],
        ("run.json is not a vaezoo run record", "wandb_id", "delete it"),
        prepare=escaping_run_record,
    ),
    Case(
        "evaluate-run-json-escaping-id",
        on_stage("evaluate"),
        ("run.json is not a vaezoo run record", "wandb_id"),
        prepare=escaping_run_record,
        module="tests.stage_cli",
    ),
    # 3. a job's checkpoints are its own, found in its own folder
    Case(
        "resume-best-checkpoint-elsewhere",
        ["resume={copy}"],
        ("no best-epoch007.ckpt is in this job's folder", "reads only its own checkpoints"),
        prepare=best_checkpoint_elsewhere,
    ),
    Case(
        "resume-best-checkpoint-of-another-job",
        ["resume={copy}"],
        ("written by job 0therjob, not by this job", "its own checkpoints"),
        prepare=foreign_best_checkpoint,
    ),
    *(
        Case(
            f"{stage}-best-checkpoint-of-another-job",  # refused before Hydra writes its log in the job
            on_stage(stage),
            ("written by job 0therjob, not by this job", "its own checkpoints"),
            prepare=foreign_best_checkpoint,
            module="tests.stage_cli",
        )
        for stage in ("evaluate", "prior")
    ),
]
