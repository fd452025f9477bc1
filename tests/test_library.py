"""The library's shape: an acyclic import graph and small modules."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

LIBRARY = REPO / "shared" / "skelgen_runtime"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    modules = {}
    for path in LIBRARY.rglob("*.py"):
        parts = list(path.relative_to(LIBRARY.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module -> the library modules it imports, anywhere in its source: at the top, inside functions
    and under ``TYPE_CHECKING`` (an import that only runs late is still a dependency)."""
    modules = _modules()

    def resolve(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in targets:
                found = resolve(target) if target.startswith("skelgen_runtime") else ""
                if found and found != name:
                    graph[name].add(found)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e2"}, "e2": {"e"}, "f": set()}
    assert sorted(_cycles(graph)) == [["a", "b", "c"], ["e", "e2"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_library_import_graph_is_acyclic() -> None:
    graph = import_graph()
    assert len(graph) > 80 and graph["skelgen_runtime.records.info"], "the graph is read"
    cycles = _cycles(graph)
    detail = ["; ".join(f"{m} -> {sorted(n for n in graph[m] if n in c)}" for m in c) for c in cycles]
    assert not cycles, "import cycles: " + " | ".join(detail)


def test_the_label_map_is_at_the_bottom() -> None:
    """``skelgen_runtime.labels`` imports nothing of the library but its errors."""
    assert import_graph()["skelgen_runtime.labels"] == {"skelgen_runtime.errors"}


def test_no_module_is_over_400_lines() -> None:
    sizes = {path.relative_to(LIBRARY.parent): len(path.read_text().splitlines()) for path in LIBRARY.rglob("*.py")}
    over = {str(path): n for path, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them by concern): {over}"


def test_the_reference_page_is_what_the_docstrings_say() -> None:
    """shared/REFERENCE.md is generated from the public modules' docstrings; a change to either must be
    followed by regenerating it (the command is in the message)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    page = subprocess.run(
        [sys.executable, "-m", "skelgen_runtime._reference"], capture_output=True, text=True, env=env, check=True
    ).stdout
    committed = (REPO / "shared" / "REFERENCE.md").read_text()
    assert page == committed, (
        "shared/REFERENCE.md is out of date: python -m skelgen_runtime._reference > shared/REFERENCE.md"
    )
    assert "## `skelgen_runtime.jobs`" in page and "class `Training" in page
