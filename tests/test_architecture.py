"""The layout's rules, read from the code's own imports (every import, also those inside functions).

Layers, from the bottom up (docs/architecture.md says why):
foundation (errors, paths) → data → nets → likelihoods → models → objective → training → config →
builder → jobs → evaluation → visualize → post_fit → reports → stages → launchers (``python -m`` modules).
A module may import its own layer or one below, never one above; no two modules import each other,
directly or round a circle; only stages and launchers import a stage.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vaezoo"
LAUNCHERS = {
    "vaezoo.__main__",
    "vaezoo.evaluate",
    "vaezoo.prior",
    "vaezoo.sampler",
    "vaezoo.classifier",
    "vaezoo.report",
    "vaezoo.table",
}
LAYERS = [
    ("foundation", ("vaezoo", "vaezoo.errors", "vaezoo.paths")),
    ("data", ("vaezoo.data",)),
    ("nets", ("vaezoo.nets",)),
    ("likelihoods", ("vaezoo.likelihoods",)),
    ("models", ("vaezoo.models",)),
    ("objective", ("vaezoo.objective",)),
    ("training", ("vaezoo.training",)),
    ("config", ("vaezoo.config",)),
    ("builder", ("vaezoo.builder",)),
    ("jobs", ("vaezoo.jobs",)),
    ("samplers", ("vaezoo.samplers",)),
    ("evaluation", ("vaezoo.evaluation",)),
    ("visualize", ("vaezoo.visualize",)),
    ("post_fit", ("vaezoo.post_fit",)),
    ("reports", ("vaezoo.reports",)),
    ("stages", ("vaezoo.stages",)),
    ("launchers", tuple(sorted(LAUNCHERS))),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "conf" not in p.parts}


def layer_of(module: str) -> int:
    best, depth = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            exact = prefix in LAUNCHERS or prefix == "vaezoo"
            matches = module == prefix if exact else module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > depth:
                best, depth = index, len(prefix)
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS and docs/architecture.md"
    return best


def imports_of(module: str) -> set[str]:
    """The vaezoo modules that ``module`` imports, anywhere in its text (resolved to real modules)."""
    tree = ast.parse(MODULES[module].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith("vaezoo") and name != module:
                found.add(name)
    # a package's parent __init__ runs on import but is not a choice the module made
    return {name for name in found if not (name == "vaezoo" or module.startswith(name + "."))}


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in GRAPH.items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components: every component must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert not circles, f"import circles: {circles}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_only_stages_and_launchers_import_a_stage(module: str) -> None:
    if module.startswith("vaezoo.stages") or module in LAUNCHERS:
        return
    stages = sorted(t for t in GRAPH[module] if t.startswith("vaezoo.stages"))
    assert not stages, f"{module} imports the stage(s) {stages}"
