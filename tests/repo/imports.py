"""The natfeed modules a file reaches through its imports — every import, also inside functions and
``TYPE_CHECKING`` blocks, and the ``__init__`` of every package on the way — read from the source with
``ast`` (nothing is imported)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"


def module_file(name: str) -> Path | None:
    """``natfeed.core.io`` -> src/natfeed/core/io.py (or the package's __init__.py); None if no such module."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _with_parents(name: str) -> Iterator[str]:
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        yield ".".join(parts[:i])


def direct_imports(path: Path) -> set[str]:
    """The natfeed modules ``path`` imports anywhere in its body, with their parent packages."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.split(".")[0] != "natfeed":
                continue
            found.update(m for m in _with_parents(name) if module_file(m) is not None)
    return found


def closure(path: Path) -> set[str]:
    """Every natfeed module reachable from ``path`` (the file itself excluded unless imported)."""
    seen: set[str] = set()
    todo = list(direct_imports(path))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        file = module_file(name)
        if file is not None:
            todo.extend(direct_imports(file) - seen)
    return seen


def import_graph() -> dict[str, set[str]]:
    """natfeed module -> the natfeed modules it imports (parents of a module are not counted as imports of
    it: a package's ``__init__`` runs before its modules, it does not import them)."""
    graph: dict[str, set[str]] = {}
    for file in sorted((SRC / "natfeed").rglob("*.py")):
        rel = file.relative_to(SRC).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        name = ".".join(parts)
        own_parents = set(_with_parents(name)) - {name}
        graph[name] = {m for m in direct_imports(file) if m != name and m not in own_parents}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (a list of modules, first = last) or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None
