"""``python -m vaezoo.table DIR ...``: one Markdown table of every job's results.json under the folders.

Used for the README's model table; each row is one job (model, IWAE k, epochs, test metrics).
A VQ-VAE job whose prior was trained also gets the test ELBO with its learned prior.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

COLUMNS = [
    "model",
    "kl",
    "objective.k",
    "epochs",
    "test examples",
    "test ELBO",
    "IW bound (k)",
    "log p(x|z)",
    "KL",
    "active units",
    "recon MSE",
]


def row(job: Path) -> list[str]:
    results = json.loads((job / "results.json").read_text())
    test = results["test"]
    cfg = OmegaConf.load(job / "config.yaml")
    k = OmegaConf.select(cfg, "objective.k", default=1)
    iw = test.get("iw_bound_nats")
    elbo = f"{test['elbo_nats']:.2f}"
    prior = job / "prior" / "results.json"
    if prior.is_file():
        elbo += f" ({json.loads(prior.read_text())['test_elbo_learned_prior_nats']:.2f} with learned prior)"
    return [
        results["model"],
        results.get("kl", ""),
        str(k),
        str(results["epochs"]),
        str(test["n_examples"]),
        elbo,
        "n/a" if iw is None else f"{iw:.2f} ({test['iw_k']})",
        f"{test['log_px_z_nats']:.2f}",
        f"{test['kl_nats']:.2f}",
        f"{test['active_units']}/{test['latent_units']}",
        f"{test['recon_mse']:.4f}" if "recon_mse" in test else "n/a",
    ]


def table(folders: list[Path]) -> str:
    jobs = sorted({p.parent for folder in folders for p in Path(folder).rglob("results.json")} - set())
    jobs = [j for j in jobs if (j / "config.yaml").is_file()]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(job)) + " |" for job in jobs]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) < 2:
        print("usage: python -m vaezoo.table RUN_FOLDER [RUN_FOLDER ...]", file=sys.stderr)
        sys.exit(2)
    print(table([Path(a) for a in sys.argv[1:]]))


if __name__ == "__main__":
    main()
