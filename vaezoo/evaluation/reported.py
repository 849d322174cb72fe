"""What a reported number is: which way is better, its unit, a line about it.

Every key a metric reports is declared at registration (``register_metric(..., reports=[...])``) and
every key of results.json's ``test`` section beside the code that writes it
(:data:`vaezoo.evaluation.held_out.TEST_REPORTED`). The leaderboard, the Markdown table and the HTML
report read these declarations to mark the best job and to label columns; nothing guesses a
direction from a name, and a number nobody declared is shown unmarked.

Keys, exactly:

- ``"value"``: the one number of a metric that returns a plain number (results.json ``{"value": x}``);
  it is then the metric's only declaration.
- ``"eval_accuracy"``: the entry of that name in a metric's dict (results.json ``{"values": {...}}``).
- ``"gap_*"``: a family of entries whose names start with ``gap_`` (one per ground-truth factor, say);
  ``*`` is allowed only as the last character, and an exact key wins over a family.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

Better = Literal["higher", "lower"]
DIRECTIONS: tuple[Better | None, ...] = ("higher", "lower", None)
#: The key of a metric that reports one plain number.
SINGLE = "value"
T = TypeVar("T")


@dataclass(frozen=True)
class Reported:
    """One reported key: ``better`` is "higher", "lower" or None (a KL, a count: neither is better)."""

    key: str
    better: Better | None
    unit: str
    about: str

    def __post_init__(self) -> None:
        if not self.key or "*" in self.key[:-1]:
            raise ValueError(f"reported key {self.key!r}: give a name, or a prefix ending in '*'")
        if self.better not in DIRECTIONS:
            raise ValueError(
                f"reported key {self.key!r}: better={self.better!r} is not 'higher', 'lower' or None"
            )
        if not self.unit.strip() or not self.about.strip():
            raise ValueError(f"reported key {self.key!r}: say its unit and what it is (unit=, about=)")

    @property
    def is_family(self) -> bool:
        return self.key.endswith("*")

    def matches(self, key: str) -> bool:
        return key.startswith(self.key[:-1]) if self.is_family else key == self.key

    @property
    def arrow(self) -> str:
        """↑ for higher is better, ↓ for lower, nothing when neither is."""
        return {"higher": "↑", "lower": "↓", None: ""}[self.better]

    def best_of(self, items: Iterable[T], key: Callable[[T], float] | None = None) -> T:
        """The best of ``items`` (by ``key``) in the declared direction; only for a ranked key."""
        if self.better is None:
            raise ValueError(f"reported key {self.key!r} is not ranked: neither way is better")
        pick = max if self.better == "higher" else min
        return pick(items, key=key) if key is not None else pick(items)

    @property
    def description(self) -> str:
        """One line for a tooltip: what it is, its unit and which way is better."""
        way = {"higher": "higher is better", "lower": "lower is better", None: "neither way is better"}
        return f"{self.about} ({self.unit}; {way[self.better]})"


def find(declarations: Iterable[Reported], key: str) -> Reported | None:
    """The declaration of ``key``: the exact one, else the family with the longest matching prefix."""
    declarations = list(declarations)
    exact = [d for d in declarations if not d.is_family and d.key == key]
    if exact:
        return exact[0]
    families = sorted((d for d in declarations if d.is_family and d.matches(key)), key=lambda d: -len(d.key))
    return families[0] if families else None


def check_declarations(owner: str, declarations: Sequence[Reported]) -> tuple[Reported, ...]:
    """``declarations`` as a tuple after checking that there are some, all Reported, each key once."""
    if not declarations:
        raise ValueError(f"{owner}: declare every key it reports (reports=[Reported(...), ...])")
    wrong = [d for d in declarations if not isinstance(d, Reported)]
    if wrong:
        raise ValueError(f"{owner}: reports must be Reported declarations, got {wrong!r}")
    keys = [d.key for d in declarations]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"{owner}: keys {twice} are declared twice")
    return tuple(declarations)


def undeclared(declarations: Iterable[Reported], value: Any) -> list[str]:
    """The keys of a reported value (a number: "value"; a dict: its keys) that no declaration covers."""
    declarations = list(declarations)
    keys = [str(k) for k in value] if isinstance(value, Mapping) else [SINGLE]
    return [k for k in keys if find(declarations, k) is None]


#: Top-level keys of a job's results.json that the train stage writes and the leaderboard shows.
RUN_REPORTED = check_declarations(
    "the train stage's results",
    [
        Reported("epochs", None, "count", "epochs trained"),
        Reported("train_seconds", "lower", "s", "wall-clock seconds of training"),
        Reported("best_val_elbo_nats", "higher", "nats per example", "best validation ELBO"),
        Reported(
            "lr_schedule",
            None,
            "record",
            "the learning-rate schedule run; shortened: fewer epochs than the paper's",
        ),
    ],
)
#: Keys of ``prior/results.json`` that the prior stage (``python -m vaezoo.prior``) writes and the
#: leaderboard shows.
PRIOR_REPORTED = check_declarations(
    "the prior stage's results",
    [
        Reported(
            "test_elbo_learned_prior_nats",
            "higher",
            "nats per example",
            "test ELBO of the VQ-VAE with the learned prior",
        ),
    ],
)
#: results.json ``paper`` section of a paper-protocol preset: the published number beside the measured one.
#: Its direction is that of the metric it names, which differs per preset, so these are not ranked.
PAPER_REPORTED = check_declarations(
    "the paper comparison",
    [
        Reported("metric", None, "name", "the results.json key the paper reports"),
        Reported("value", None, "the metric's unit", "the published number"),
        Reported("measured", None, "the metric's unit", "this job's number"),
        Reported("difference", None, "the metric's unit", "measured minus published"),
    ],
)
