"""The package's tree is its architecture: wings stacked in one direction, no cycles, the cores' C++ free of PPO.

Each module belongs to the wing named by its first sub-package; a module may import its own wing and the wings
below it, never one above (imports inside functions count too: they are dependencies all the same).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rlgru"

#: bottom to top; wings on one line (a tuple) may not import each other
LAYERS: list[tuple[str, ...]] = [
    ("runtime",),
    ("cores",),
    ("env_plumbing",),
    ("fast",),
    ("algorithm",),
    ("export",),
    ("harness",),
    ("tune",),
    ("bench",),
    ("cli",),
]
#: modules at the package root: the public API and the old-name aliases
ROOT_MODULES = {"__init__.py", "_moved_modules.py"}


def _rank(wing: str) -> int:
    for rank, names in enumerate(LAYERS):
        if wing in names:
            return rank
    raise AssertionError(f"rlgru/{wing} is in no layer of this test: add it where it belongs")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """rlgru modules ``path`` imports (``from rlgru.x import y`` counts rlgru.x.y when that is a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in names if name in modules}


def _wing(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else None


def test_the_package_root_keeps_only_the_public_api() -> None:
    assert {p.name for p in PACKAGE.glob("*.py")} <= ROOT_MODULES
    for directory in (p for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        _rank(directory.name)


def test_no_module_imports_a_wing_above_its_own() -> None:
    modules = _modules()
    upward = []
    for name, path in modules.items():
        wing = _wing(name)
        if wing is None:
            continue
        for target in _imports(path, modules):
            target_wing = _wing(target)
            if target_wing is None or target_wing == wing:
                continue
            if _rank(target_wing) >= _rank(wing):
                upward.append(f"{name} -> {target}")
    assert not upward, "imports against the layering:\n" + "\n".join(sorted(upward))


def test_the_import_graph_has_no_cycles() -> None:
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    # a package's __init__ importing its own submodules is how packages export names, not a cycle of design
    for name in graph:
        graph[name] = {t for t in graph[name] if not (t.startswith(name + ".") and modules[name].name == "__init__.py")}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycle.extend([*stack[stack.index(target):], target] if target in stack else [node, target])
                return True
            if state.get(target) is None and visit(target, [*stack, target]):
                return True
        state[node] = 2
        return False

    for start in sorted(graph):
        if state.get(start) is None and visit(start, [start]):
            break
    assert not cycle, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("path", sorted((PACKAGE / "cores" / "csrc").iterdir()), ids=lambda p: p.name)
def test_memory_core_kernels_know_nothing_of_ppo(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"\bppo\b|ppo_|heads", text, re.IGNORECASE), f"{path.name} mentions PPO or its heads"
