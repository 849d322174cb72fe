"""Where vaezoo finds its configs, in a checkout and in an installed package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def config_dir() -> str:
    """Absolute path of the Hydra config folder.

    A checkout (or editable install) uses the top-level ``conf/``; a wheel install ships the
    same folder as the package ``vaezoo.conf``.
    """
    checkout = Path(__file__).resolve().parents[1] / "conf"
    if (checkout / "config.yaml").is_file():
        return str(checkout)
    installed = Path(str(resources.files("vaezoo.conf")))
    if (installed / "config.yaml").is_file():
        return str(installed)
    raise FileNotFoundError(f"vaezoo configs not found in {checkout} or {installed}; reinstall vaezoo")


def unique_suffix() -> str:
    """What makes a run or sweep folder name unique beyond its timestamp.

    Under SLURM it is the job id (and array task), by which a requeued job finds its folder again
    (:func:`vaezoo.jobs.resume.slurm_requeued_job`); elsewhere six random hex digits, so two launches in
    the same second (shell loops, job arrays) never share a folder. Cached per config, like ``now``.
    """
    import os
    import secrets

    job = os.environ.get("SLURM_ARRAY_JOB_ID")
    if job is not None:
        return f"slurm{job}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    if os.environ.get("SLURM_JOB_ID"):
        return f"slurm{os.environ['SLURM_JOB_ID']}"
    return secrets.token_hex(3)


MAX_NAME = 120  # characters of a sweep job's folder name (file systems allow 255 bytes)


def short_name(name: str) -> str:
    """A folder name of at most MAX_NAME characters: long override lists end in a hash of the rest."""
    import hashlib

    if len(name) <= MAX_NAME:
        return name
    return f"{name[: MAX_NAME - 9]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def group_options(group: str, conf: str | Path | None = None) -> list[str]:
    """The choices of a config group (``hardware``: auto, cpu, ...), without its shared ``_`` bases.

    A group folder also holds files such as ``conf/hardware/_base.yaml`` that its options list in their
    defaults; a name starting with ``_`` is never a choice, so every listing of options comes here.
    """
    folder = Path(conf or config_dir()) / group
    return sorted(p.stem for p in folder.glob("*.yaml") if not p.stem.startswith("_"))


def config_groups_text() -> str:
    """``group: option, ...`` for every config group, for ``--help`` (Hydra's own list shows bases)."""
    conf = Path(config_dir())
    folders = (str(d.relative_to(conf)) for d in conf.rglob("*") if d.is_dir())
    groups = sorted(g for g in folders if not g.startswith(("hydra", "_")) and group_options(g))
    return "\n".join(f"{g}: {', '.join(group_options(g))}" for g in groups)


def register_resolvers() -> None:
    """``${vaezoo.unique:}`` and ``${vaezoo.short:...}`` for folder names (see conf/config.yaml), and
    ``${vaezoo.groups:}`` for the help text."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("vaezoo.groups"):
        OmegaConf.register_new_resolver("vaezoo.groups", config_groups_text)

    if not OmegaConf.has_resolver("vaezoo.unique"):
        OmegaConf.register_new_resolver("vaezoo.unique", unique_suffix, use_cache=True)
    if not OmegaConf.has_resolver("vaezoo.short"):
        OmegaConf.register_new_resolver("vaezoo.short", short_name)


def quote_run_path(args: list[str]) -> list[str]:
    """Quote ``run=<path>`` for Hydra's override grammar: multirun job folders contain '=' and ','."""
    out = []
    for arg in args:
        if arg.startswith("run=") and not arg[4:].startswith(("'", '"')):
            arg = "run='" + arg[4:].replace("\\", "\\\\").replace("'", "\\'") + "'"
        out.append(arg)
    return out


def require_run_argument(program: str, example: str) -> None:
    """Exit 2 with one line when a ``run=<folder>`` entry point is called without run= (and not for
    Hydra's own flags such as --help or --cfg job)."""
    import sys

    args = sys.argv[1:]
    if not any(a.startswith("-") for a in args) and not any(a.startswith("run=") for a in args):
        print(f"{program}: give {example}", file=sys.stderr)
        sys.exit(2)
    for arg in args:
        if arg.startswith("run=") and (problem := run_folder_problem(arg[4:].strip("'\""))):
            print(f"{program}: error: {problem}", file=sys.stderr)
            sys.exit(2)


def run_folder_problem(given: str) -> str | None:
    """One line when ``run=`` names a file instead of its folder, or a folder the stage cannot write
    into (it writes results and pictures there); None when it can go on."""
    import os

    path = Path(given).expanduser()
    if path.is_file():
        return f"run={given} is a file; give the job folder that holds it: run={path.parent}"
    if path.is_dir() and not os.access(path, os.W_OK):
        return (
            f"cannot write in {path}: the folder is read-only; copy it somewhere writable "
            f"(cp -r {path} <folder>) and give run=<folder>"
        )
    return None


def unwritable_folder_problem(folder: str | Path, what: str, fix: str) -> str | None:
    """One line when ``folder`` (or, while it does not exist yet, the nearest folder above it that
    does) cannot be written: a read-only mount or another user's folder. ``what`` names the folder's
    role, ``fix`` how to choose another."""
    import os

    path = Path(folder).expanduser().absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        return None
    return f"cannot write the {what} {path}: {existing} is read-only or not yours; {fix}"
