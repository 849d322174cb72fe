"""The exact allow-list of ``_target_``s a job folder may name (vaezoo.config.targets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.bad_input_case import MARKER
from tests.cases_jobs import write_payload
from vaezoo.config.targets import CALLBACKS, TARGETS, CommandLine, allowed_at, foreign_targets
from vaezoo.errors import UnsafeInputError
from vaezoo.jobs.safety import check_override_targets

CONF = Path(__file__).resolve().parents[1] / "conf"


def conf_targets() -> list[tuple[str, str]]:
    """(group, target) for every ``_target_`` vaezoo's option files set."""
    found = []
    for path in CONF.rglob("*.yaml"):
        text = yaml.safe_load(path.read_text()) or {}
        group = path.parent.relative_to(CONF).parts[0] if path.parent != CONF else ""
        for key, value in _targets(text):
            found.append((f"{group}.{key}" if group and not key.startswith(group) else key, value))
    return found


def _targets(node, place=""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_":
                yield place, value
            else:
                yield from _targets(value, f"{place}.{key}" if place else str(key))


def test_every_target_of_conf_is_allowed_at_its_place() -> None:
    found = conf_targets()
    assert len(found) >= 12
    for place, target in found:
        place = place.removesuffix(".")
        owner = place.split(".", 1)[0] if not place.startswith("hydra") else place
        assert target in allowed_at(owner), (place, target)


@pytest.mark.parametrize(
    "tree",
    [
        {"likelihood": {"_target_": "vaezoo.data.arrays.np.load"}},  # a module attribute, not a class
        {"likelihood": {"_target_": "vaezoo.likelihoods.Bernoulli.__init__.__globals__"}},
        {"kl": {"_target_": "vaezoo.likelihoods.Bernoulli"}},  # a real vaezoo class, in the wrong place
        {"callbacks": {"x": {"_target_": "lightning.pytorch.callbacks.ModelCheckpoint"}}},  # writes files
        {"callbacks": {"x": {"_target_": CALLBACKS["EarlyStopping"], "y": {"_target_": "os.system"}}}},
        {"dataset": {"_target_": "vaezoo.data.build_datamodule", "extra": [{"_target_": "numpy.load"}]}},
        {"model": {"_target_": "vaezoo.models.VAE"}},  # models are built by name, never by target
        {"likelihood": {"_target_": "${oc.env:EVIL}"}},  # an interpolation is not a class name
    ],
)
def test_foreign_targets_are_found(tree) -> None:
    assert list(foreign_targets(tree))


def test_vaezoos_own_targets_pass() -> None:
    tree = {place.replace("*", "x"): {"_target_": sorted(targets)[0]} for place, targets in TARGETS.items()}
    nested: dict = {}
    for place, node in tree.items():
        *parents, last = place.split(".")
        at = nested
        for p in parents:
            at = at.setdefault(p, {})
        at[last] = node
    assert list(foreign_targets(nested)) == []


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("+callbacks.x={_target_: numpy.load, file: a.npy, allow_pickle: true}", "callbacks.x._target_"),
        ("callbacks={x: {_target_: vaezoo.builder.os.system}}", "callbacks.x._target_"),
        ("likelihood={_target_: vaezoo.data.arrays.np.load}", "likelihood._target_"),
        ("+callbacks.x._target_=vaezoo.builder.os.system", "callbacks.x._target_"),
        ("hydra.job.env_set.LD_PRELOAD=evil.so", "hydra.job.env_set.LD_PRELOAD"),
        ("+hydra.callbacks.x={_target_: os.system}", "hydra.callbacks.x"),
    ],
)
def test_stored_overrides_are_refused(override: str, key: str) -> None:
    with pytest.raises(UnsafeInputError, match="refusing") as err:
        check_override_targets(["dataset=digits", override], Path("overrides.yaml"))
    assert key in str(err.value)


def test_stored_overrides_of_vaezoo_itself_pass() -> None:
    check_override_targets(
        [
            "dataset=digits",
            "kl=capacity",
            "+callbacks.stop._target_=lightning.pytorch.callbacks.EarlyStopping",
            "+callbacks.lr={_target_: lightning.pytorch.callbacks.LearningRateMonitor}",
            "beta=1,4",
        ],
        Path("overrides.yaml"),
    )
    # a foreign callback the command line removes (~callbacks.kill) is not in the resumed config
    check_override_targets(
        ["+callbacks.kill._target_=tests.faults.KillAtStep"],
        Path("o.yaml"),
        CommandLine.of(["~callbacks.kill"]),
    )


def test_the_catalogues_payload_runs_code_when_unpickled(tmp_path: Path) -> None:
    """The marker check of tests/cases_jobs.py means something: numpy.load(allow_pickle) runs it."""
    path = write_payload(tmp_path)
    np.load(path, allow_pickle=True)
    assert (tmp_path / MARKER).is_file()


def test_only_the_exact_target_the_command_line_names_is_trusted() -> None:
    """A SLURM requeue resumes with the same command line, its own test callback included."""
    stored = ["+callbacks.requeue._target_=tests.faults.SlurmRequeueAtStep"]
    typed = CommandLine.of(["+callbacks.requeue._target_=tests.faults.SlurmRequeueAtStep", "-m", "beta=1"])
    check_override_targets(stored, Path("o.yaml"), typed)
    with pytest.raises(UnsafeInputError, match=r"callbacks\.requeue\._target_=numpy\.load"):
        check_override_targets(["+callbacks.requeue={_target_: numpy.load}"], Path("o.yaml"), typed)
    with pytest.raises(UnsafeInputError, match=r"callbacks\.x\._target_=numpy\.load"):  # removing a sibling
        check_override_targets(
            ["+callbacks.x._target_=numpy.load"], Path("o.yaml"), CommandLine.of(["~callbacks.xy"])
        )
