"""``python -m vaezoo reproduce=<job folder>``: rerun a finished job into a new folder and compare.

The job's own overrides (``.hydra/overrides.yaml``, read as plain strings: nothing is instantiated)
recompose its config; overrides given on the command line win. Before training, the recorded
environment and config are compared with the current ones (a changed lock file is said first); after
it, :func:`report_reproduction` prints how each result differs from the original's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vaezoo.config.targets import CommandLine
from vaezoo.errors import ConfigError
from vaezoo.jobs.folder import read_job_config
from vaezoo.jobs.provenance import compare_results, environment, environment_differences
from vaezoo.jobs.results import FILE_NAME as RESULTS_FILE
from vaezoo.jobs.results import load as load_results
from vaezoo.jobs.resume import quote_path
from vaezoo.jobs.safety import check_job_folder, check_override_targets

log = logging.getLogger("vaezoo")

# Keys that name where and how a job ran, not what it computed.
RUN_KEYS = ("paths", "resume", "reproduce", "hydra")


def reproduce_argv(args: list[str]) -> list[str]:
    """Command-line overrides with ``reproduce=<job>`` expanded into that job's own overrides."""
    given = [a for a in args if a.startswith("reproduce=")]
    if not given:
        return args
    value = given[-1].split("=", 1)[1].strip("'\"")
    if value in ("", "null"):
        return [a for a in args if not a.startswith("reproduce=")]
    if "-m" in args or "--multirun" in args:
        raise ConfigError("reproduce= reruns one job; drop -m (reproduce each job of a sweep on its own)")
    if any(a.startswith("resume=") for a in args):
        raise ConfigError("reproduce= and resume= cannot be combined: reproduce starts a new folder")
    job = Path(value).expanduser().resolve()
    stored = job / ".hydra" / "overrides.yaml"
    if not stored.is_file() or not (job / RESULTS_FILE).is_file():
        raise ConfigError(
            f"reproduce={value}: not a finished job folder (needs .hydra/overrides.yaml and results.json)"
        )
    extra = [a for a in args if not a.startswith("reproduce=")]
    extra_keys = {a.split("=", 1)[0].lstrip("+~") for a in extra}
    original = [
        str(o)
        for o in OmegaConf.load(stored)
        if not str(o).startswith(("resume=", "reproduce=", "hydra.run.dir=", "hydra.sweep"))
        and str(o).split("=", 1)[0].lstrip("+~") not in extra_keys
    ]
    # The same allow-list as resume=: a job folder someone sent may not name foreign classes.
    trusted = CommandLine.of(extra)  # what this command line removes or names itself is the user's choice
    check_override_targets(original, stored, trusted)
    check_job_folder(job, trusted)
    return [*original, *extra, f"reproduce={quote_path(str(job), 'reproduce')}"]


def _flat(cfg: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(cfg, dict):
        out: dict[str, Any] = {}
        for key, value in cfg.items():
            if not prefix and key in RUN_KEYS:
                continue
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: cfg}


def config_differences(recorded: DictConfig, current: DictConfig) -> list[str]:
    """Keys whose resolved value differs between the recorded job config and the recomposed one."""
    before = _flat(OmegaConf.to_container(recorded, resolve=False))
    after = _flat(OmegaConf.to_container(current, resolve=True))
    keys = sorted(before.keys() | after.keys())
    return [
        f"{k}: {before.get(k)!r} then, {after.get(k)!r} now" for k in keys if before.get(k) != after.get(k)
    ]


def check_before_run(job: Path, cfg: DictConfig, device: str | None = None) -> dict[str, Any]:
    """Say what differs from the original job before anything trains; returns the original results."""
    original = load_results(job / RESULTS_FILE).to_dict()
    for line in environment_differences(original.get("environment"), environment(device)):
        log.warning("reproduce: %s", line)
    recorded = job / "config.yaml"
    if recorded.is_file():
        for line in config_differences(read_job_config(recorded), cfg):
            log.warning("reproduce: config %s", line)
    return original


def report_reproduction(job: Path, original: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Print the metric-by-metric comparison; returns the ``reproduction`` section of results.json."""
    rows = compare_results(original, new)
    counts = {s: sum(r["status"] == s for r in rows) for s in ("identical", "within", "differs")}
    width = max((len(r["metric"]) for r in rows), default=6)
    lines = [f"reproduction of {job}: " + ", ".join(f"{n} {s}" for s, n in counts.items())]
    lines += [
        f"  {r['metric']:<{width}}  {r['original']:>14.6g}  {r['reproduced']:>14.6g}  "
        f"{r['difference']:>+11.3g}  {r['status']}"
        for r in rows
    ]
    print("\n".join(lines), flush=True)
    return {
        "original_job": str(job),
        "counts": counts,
        "differs": [r for r in rows if r["status"] == "differs"],
    }
