"""Bad-input cases: values out of their declared range, in keys that a group option or a preset adds.

Each is refused by ``python -m vaezoo`` before Hydra makes a job folder (nothing under the runs
folder), in one line naming the key, the value, the allowed range and an example fix, with exit 2.
"""

from __future__ import annotations

from pathlib import Path

from tests.bad_input_case import Case

DIGITS = ["dataset=digits", "hardware=cpu", "logger=csv", "trainer.max_epochs=1"]


def nothing_ran(runs: Path) -> None:
    made = sorted(p.relative_to(runs) for p in runs.rglob("*")) if runs.exists() else []
    assert made == [], f"a refused config still made {made}"


def out_of_range(case_id: str, args: list[str], *expect: str) -> Case:
    return Case(case_id, [*DIGITS, *args], ("out of range", *expect), check=nothing_ran)


CASES: list[Case] = [
    out_of_range(
        "range-kl-capacity-negative",
        ["kl=capacity", "kl.max_capacity=-1"],
        "kl.max_capacity=-1",
        ">= 0",
        "e.g. kl.max_capacity=25",
    ),
    out_of_range(
        "range-kl-capacity-in-a-sweep",
        ["-m", "kl=capacity", "kl.max_capacity=25,-1"],
        "kl.max_capacity=-1",
        "e.g. kl.max_capacity=25",
    ),
    out_of_range(
        "range-kl-capacity-anneal-zero",
        ["kl=capacity", "kl.anneal_steps=0"],
        "kl.anneal_steps=0",
        ">= 1",
        "e.g. kl.anneal_steps=100000",
    ),
    out_of_range(
        "range-kl-cyclical-ramp-zero",
        ["kl=cyclical", "kl.ramp_fraction=0"],
        "kl.ramp_fraction=0",
        "(0, 1]",
        "e.g. kl.ramp_fraction=0.5",
    ),
    out_of_range(
        "range-kl-free-bits-negative",
        ["kl=free_bits", "kl.lambda_=-0.5"],
        "kl.lambda_=-0.5",
        ">= 0",
        "e.g. kl.lambda_=0.1",
    ),
    out_of_range(
        "range-preset-lvae-cycles-zero",  # repro_lvae picks kl=cyclical and sets kl.cycles itself
        ["experiment=repro_lvae", "kl.cycles=0"],
        "kl.cycles=0",
        ">= 1",
        "e.g. kl.cycles=4",
    ),
    out_of_range(
        "range-preset-quickstart-threads-zero",  # quickstart sets hardware.num_threads=1
        ["experiment=quickstart", "hardware.num_threads=0"],
        "hardware.num_threads=0",
        ">= 1",
        "e.g. hardware.num_threads=1",
    ),
    out_of_range(
        "range-gaussian-sigma-zero",
        ["likelihood=gaussian", "likelihood.sigma=0"],
        "likelihood.sigma=0",
        "> 0",
        "e.g. likelihood.sigma=0.1",
    ),
    out_of_range(
        "range-vqvae-ema-decay-one",
        ["model=vqvae", "model.ema_decay=1.0"],
        "model.ema_decay=1.0",
        "(0, 1)",
        "e.g. model.ema_decay=0.99",
    ),
    out_of_range(
        "range-hvae-logvar-bound-zero",
        ["model=hvae", "model.logvar_bound=0"],
        "model.logvar_bound=0",
        "> 0",
        "e.g. model.logvar_bound=8",
    ),
    out_of_range(
        "range-devices-zero",
        ["hardware.devices=0"],
        "hardware.devices=0",
        "-1 for every visible device",
        "e.g. hardware.devices=1",
    ),
    out_of_range(
        "range-tsne-one-point",
        ["pictures.tsne_points=1"],
        "pictures.tsne_points=1",
        ">= 2",
        "e.g. pictures.tsne_points=500",
    ),
]
