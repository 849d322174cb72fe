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
