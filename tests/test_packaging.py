"""The package finds its configs when installed from a wheel, not only from a checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def test_wheel_ships_the_configs_and_finds_them_installed(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            tmp_path,
            REPO,
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("vaezoo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    conf_files = {
        Path(n).relative_to("vaezoo/conf").as_posix() for n in names if n.startswith("vaezoo/conf/")
    }
    repo_files = {p.relative_to(REPO / "conf").as_posix() for p in (REPO / "conf").rglob("*.yaml")}
    assert repo_files <= conf_files
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    found = subprocess.run(
        [sys.executable, "-c", "from vaezoo.paths import config_dir; print(config_dir())"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(found.stdout.strip()) == site / "vaezoo" / "conf"


def test_every_package_and_config_group_is_listed_for_the_wheel():
    """pyproject lists packages explicitly (conf/ ships as vaezoo.conf): a new sub-package must be added."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    code = {
        ".".join(p.parent.relative_to(REPO).parts)
        for p in (REPO / "vaezoo").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    conf = {".".join(("vaezoo", *p.parent.relative_to(REPO).parts)) for p in (REPO / "conf").rglob("*.yaml")}
    missing = sorted((code | conf) - listed)
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml"
