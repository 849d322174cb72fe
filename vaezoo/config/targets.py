"""Where a ``_target_`` may stand in a vaezoo config, and exactly which classes it may name there.

A job folder someone sends you (``config.yaml``, ``.hydra/overrides.yaml``) is data: the objects of
the job are rebuilt from vaezoo's own classes. So every ``_target_`` in a config read from a job
folder must be, at its place, one of the fully qualified names that vaezoo's own option files use
(``conf/dataset``, ``conf/likelihood``, ``conf/kl``) or, under ``callbacks.<name>``, a class of the
registry :data:`CALLBACKS`. Names are compared whole: no prefix, so ``vaezoo.data.arrays.np.load``
(a module attribute Hydra would follow to ``numpy.load``) is refused like ``numpy.load`` itself.
tests/test_job_targets.py checks that every ``_target_`` of conf/ is listed here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaezoo.errors import UnsafeInputError

# Lightning callbacks a job may add with ``+callbacks.<name>._target_=<class>`` and still be resumed,
# reproduced or evaluated from its folder: those that only watch or steer training and write no files
# of their own (ModelCheckpoint and OnExceptionCheckpoint, which write anywhere, are not among them).
CALLBACKS: dict[str, str] = {
    name: f"lightning.pytorch.callbacks.{name}"
    for name in (
        "EarlyStopping",
        "LearningRateMonitor",
        "DeviceStatsMonitor",
        "GradientAccumulationScheduler",
        "ModelSummary",
        "RichModelSummary",
        "StochasticWeightAveraging",
        "Timer",
        "TQDMProgressBar",
        "RichProgressBar",
    )
}

# Place in the config (``*`` is one key of any name) -> the exact classes a ``_target_`` there may name.
TARGETS: dict[str, frozenset[str]] = {
    "dataset": frozenset(
        {
            "vaezoo.data.build_datamodule",
            "vaezoo.data.dsprites.DSpritesDataModule",
            "vaezoo.data.grid.GridDataModule",
        }
    ),
    "likelihood": frozenset(
        {
            "vaezoo.likelihoods.Bernoulli",
            "vaezoo.likelihoods.ContinuousBernoulli",
            "vaezoo.likelihoods.DiscretizedLogistic",
            "vaezoo.likelihoods.Gaussian",
        }
    ),
    "kl": frozenset(
        {
            "vaezoo.objective.ConstantBeta",
            "vaezoo.objective.LinearWarmup",
            "vaezoo.objective.Cyclical",
            "vaezoo.objective.FreeBits",
            "vaezoo.objective.CapacityAnnealing",
        }
    ),
    "callbacks.*": frozenset(CALLBACKS.values()),
    "hydra.callbacks.*": frozenset(
        {"vaezoo.stages.sweep.SummarizeSweep", "vaezoo.stages.sweep.ReportFailures"}
    ),
}


def _place_matches(pattern: str, place: str) -> bool:
    wanted, given = pattern.split("."), place.split(".")
    return len(wanted) == len(given) and all(w in ("*", g) for w, g in zip(wanted, given, strict=True))


def allowed_at(place: str) -> frozenset[str]:
    """The classes a ``_target_`` directly under ``place`` may name (empty: none may stand there)."""
    for pattern, targets in TARGETS.items():
        if _place_matches(pattern, place):
            return targets
    return frozenset()


def targets_in(node: Any, place: str = "") -> Iterator[tuple[str, Any]]:
    """(``place._target_``, value) for every ``_target_`` key in a plain tree of dicts and lists."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            path = f"{place}.{key}" if place else str(key)
            if key == "_target_":
                yield path, value
            else:
                yield from targets_in(value, path)
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            yield from targets_in(value, f"{place}[{i}]")


def foreign_targets(node: Any, place: str = "") -> Iterator[tuple[str, str]]:
    """(key, value) of every ``_target_`` in the tree that vaezoo does not build at that place."""
    for key, value in targets_in(node, place):
        owner = key.rsplit(".", 1)[0] if "." in key else ""
        if not isinstance(value, str) or value not in allowed_at(owner):
            yield key, str(value)


def refusal_reason(key: str) -> str:
    """Why a ``_target_`` at ``key`` was refused, and what may stand there instead."""
    owner = key.rsplit(".", 1)[0] if "." in key else ""
    allowed = allowed_at(owner)
    if owner.startswith("callbacks."):
        names = ", ".join(CALLBACKS)
        return f"a job may add only the callbacks of vaezoo's registry ({names}), named by their full class"
    if allowed:
        return "vaezoo builds there only " + ", ".join(sorted(allowed))
    return "vaezoo builds no object there"


def nested(key: str, value: Any) -> dict[str, Any]:
    """``a.b.c=v`` as ``{a: {b: {c: v}}}``, so a target is checked at its place in the config."""
    node: Any = value
    for part in reversed(key.split(".")):
        node = {part: node}
    return node


@dataclass(frozen=True)
class CommandLine:
    """What the user's own command line decides about targets, which a job folder's check trusts:
    the keys it removes (``~callbacks.kill``) and the exact targets it names at their places
    (``+callbacks.kill._target_=tests.faults.KillAtStep``: the user's own choice, as on a fresh run)."""

    removed: frozenset[str] = frozenset()
    named: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, args: Iterable[str]) -> CommandLine:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.errors import HydraException

        parser = OverridesParser.create()
        removed, named = set(), {}
        for arg in args:
            if arg.startswith("-") or arg.startswith(("resume=", "reproduce=")):
                continue
            try:
                (override,) = parser.parse_overrides([arg])
            except HydraException:  # Hydra refuses it later; it earns no trust here
                continue
            if override.is_delete():
                removed.add(override.key_or_group)
            else:
                named.update((k, v) for k, v in targets_in(nested(override.key_or_group, override.value())))
        return cls(frozenset(removed), named)

    def removes(self, key: str) -> bool:
        return any(key == r or key.startswith(r + ".") for r in self.removed)

    def covers(self, key: str, target: Any) -> bool:
        """Whether the command line itself named this target here, or removes the object that holds it."""
        return self.named.get(key) == target or self.removes(key.rsplit(".", 1)[0])


NOTHING_TRUSTED = CommandLine()


def refusal(source: Path | str, key: str, target: str) -> UnsafeInputError:
    """The one line that refuses a foreign ``_target_`` read from a job folder."""
    return UnsafeInputError(
        f"refusing {source}: {key}={target} is not what vaezoo builds there ({refusal_reason(key)}); a job "
        "folder may only name vaezoo's own classes: if you did not put it there, do not use this job folder"
        " (or drop that entry)"
    )


def check_job_targets(cfg: Any, source: Path | str, trusted: CommandLine = NOTHING_TRUSTED) -> None:
    """Refuse a config that came from a job folder (resume=, reproduce=, run=) unless every ``_target_``
    in it is exactly one vaezoo builds at that place (or one the command line itself named there);
    ``cfg`` is a plain tree or an OmegaConf node."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(cfg, DictConfig | ListConfig):
        cfg = OmegaConf.to_container(cfg, resolve=False)
    for key, target in foreign_targets(cfg):
        if not trusted.covers(key, target):
            raise refusal(source, key, target)
