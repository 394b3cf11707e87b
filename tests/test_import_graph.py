"""The modules of ``ratesvc`` import each other without a cycle.

Only imports that run when a module is loaded count: those at module level
(also inside a module-level ``try`` or ``if``), not those inside a function
or under ``if TYPE_CHECKING:``.  Importing ``ratesvc.a.b`` runs
``ratesvc/a/__init__.py`` first, so it counts as importing ``ratesvc.a`` too,
except from inside ``ratesvc.a`` (whose ``__init__`` is loading already).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import ratesvc

PACKAGE_DIR = Path(ratesvc.__file__).parent


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = ["ratesvc", *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _load_time_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _load_time_imports(node.body)
            yield from _load_time_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _load_time_imports(block)
            for handler in node.handlers:
                yield from _load_time_imports(handler.body)


def _ancestors(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:n]) for n in range(1, len(parts) + 1)}


def _loaded_by(name: str, importer: str, modules: dict[str, Path]) -> set[str]:
    """``name`` and the packages it loads first, less the importer's own packages."""
    return (_ancestors(name) - _ancestors(importer) | {name}) & modules.keys()


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        imported: set[str] = set()
        for node in _load_time_imports(ast.parse(path.read_text()).body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    imported |= _loaded_by(alias.name, name, modules)
                continue
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            imported |= _loaded_by(base, name, modules)
            for alias in node.names:  # ``from pkg import module``
                imported |= _loaded_by(f"{base}.{alias.name}", name, modules)
        imported.discard(name)
        graph[name] = imported
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
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
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_modules_and_their_imports() -> None:
    graph = import_graph()
    assert "ratesvc.supervisor" in graph["ratesvc.app"]
    assert "ratesvc.plugin" in graph["ratesvc.events.plugin"]
    # From outside a package, importing its module loads the package first.
    assert "ratesvc.events" in graph["ratesvc.app"] or "ratesvc.api" in graph["ratesvc.app"]
    # Imports inside functions do not count (default_plugins imports the features lazily).
    assert "ratesvc.courses.plugin" not in graph["ratesvc.app"]


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_a_cycle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
