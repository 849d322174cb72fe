"""Learning-rate schedules: an optimiser option (``optimizer.lr_schedule``), as a factor per epoch.

A schedule states the number of epochs its paper ran (``paper_epochs``); a run with fewer
``trainer.max_epochs`` keeps the schedule's shape by compressing its stages proportionally, and
``results.json`` records that it was shortened. Adding a schedule is one function here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vaezoo.errors import ConfigError


@dataclass(frozen=True)
class EpochSchedule:
    """``factor(epoch)`` multiplies the base learning rate; ``paper_epochs`` is the full protocol."""

    kind: str
    factor: Callable[[int], float]
    paper_epochs: int | None
    run_epochs: int

    def record(self) -> dict[str, Any]:
        shortened = self.paper_epochs is not None and self.run_epochs < self.paper_epochs
        return {
            "kind": self.kind,
            "paper_epochs": self.paper_epochs,
            "run_epochs": self.run_epochs,
            "shortened": shortened,
        }


def burda(max_epochs: int, stages: int = 8, decay_per_stage: float = 10 ** (-1 / 7)) -> EpochSchedule:
    """Burda et al. (2015): stage i (i = 0..stages-1) runs 3^i epochs at lr·10^(−i/7): 3,280 epochs for 8."""
    lengths = [3**i for i in range(stages)]
    paper = sum(lengths)
    scale = min(1.0, max_epochs / paper)
    bounds, total = [], 0.0
    for length in lengths:
        total += length * scale
        bounds.append(total)

    def factor(epoch: int) -> float:
        stage = next((i for i, end in enumerate(bounds) if epoch < round(end)), stages - 1)
        return decay_per_stage**stage

    return EpochSchedule("burda", factor, paper, max_epochs)


SCHEDULES: dict[str, Callable[..., EpochSchedule]] = {"burda": burda}


def build_schedule(spec: dict[str, Any] | None, max_epochs: int) -> EpochSchedule | None:
    """The schedule named by ``optimizer.lr_schedule.kind`` (None: constant learning rate)."""
    if not spec:
        return None
    spec = dict(spec)
    kind = spec.pop("kind", None)
    if kind not in SCHEDULES:
        raise ConfigError(
            f"optimizer.lr_schedule.kind={kind!r} is unknown; choose one of {', '.join(sorted(SCHEDULES))} "
            "(or optimizer.lr_schedule=null for a constant learning rate)"
        )
    if max_epochs is None or max_epochs < 1:
        raise ConfigError("optimizer.lr_schedule needs trainer.max_epochs >= 1 (it is laid out over epochs)")
    try:
        return SCHEDULES[kind](max_epochs, **spec)
    except TypeError as err:
        raise ConfigError(f"optimizer.lr_schedule: {err}") from None
