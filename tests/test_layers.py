"""core's layers: each package imports only the ones below it, no module cycle, no module too long, no UI."""
import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.quick  # ast only: a second

CORE = Path(__file__).resolve().parents[1] / "core"
# what each package may import (besides itself, and core's root modules: the error root and config)
ALLOWED = {
    "store": set(),
    "data": {"store"},
    "model": {"data", "store"},
    "analysis": {"model", "data", "store"},
    "train": {"analysis", "model", "data", "store"},
    "export": {"analysis", "model", "data", "store"},
    "engine": {"train", "export", "analysis", "model", "data", "store"},
    "cli": {"engine", "train", "export", "analysis", "model", "data", "store"},
}
ROOT_MODULES = {"core", "core.config", "core.__main__"}
MAX_LINES = 350


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(CORE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """Every core module `path` imports, at the top or inside a function (`from core.x import y` counts y
    when y is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] in ("core", "streamlit", "ui", "app_pages")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in ("streamlit", "ui", "app_pages"):
                found.add(node.module)
            elif node.module.split(".")[0] == "core":
                subs = {f"{node.module}.{a.name}" for a in node.names} & known
                found |= subs or {node.module}
    return found


def package(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ALLOWED) else None


GRAPH = {name: imports(path, set(modules())) for name, path in modules().items()}


def test_every_module_lives_in_a_package():
    loose = [n for n in GRAPH if package(n) is None and n not in ROOT_MODULES]
    assert not loose, f"modules outside core's subpackages: {loose}"


def test_core_never_imports_the_ui():
    bad = {n: sorted(i for i in deps if not i.startswith("core")) for n, deps in GRAPH.items()}
    assert not {n: d for n, d in bad.items() if d}


@pytest.mark.parametrize("name", sorted(n for n in GRAPH if package(n)))
def test_imports_go_one_way(name):
    own = package(name)
    wrong = sorted(d for d in GRAPH[name] if d.startswith("core.") and package(d)
                   and package(d) != own and package(d) not in ALLOWED[own])
    assert not wrong, f"{name} ({own}) may import only {sorted(ALLOWED[own]) or 'nothing else of core'}, not {wrong}"


def test_no_import_cycle():
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for dep in sorted(GRAPH.get(node, ())):
            if dep == node or dep not in GRAPH or dep in ROOT_MODULES:
                continue
            if state.get(dep) == 1:
                pytest.fail("import cycle: " + " → ".join(trail[trail.index(dep):] + [dep]))
            if dep not in state:
                visit(dep, trail + [dep])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


def test_a_package_is_not_a_cycle_either():
    deps = {p: set() for p in ALLOWED}
    for name, targets in GRAPH.items():
        for t in targets:
            if package(name) and package(t) and package(t) != package(name):
                deps[package(name)].add(package(t))
    for a in deps:
        for b in deps[a]:
            assert a not in deps[b], f"packages {a} and {b} import each other"


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_modules_stay_short(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (at most {MAX_LINES}): split it by job"
