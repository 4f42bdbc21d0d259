"""The pipelines layer imports one way: no module of ``fti.pipelines`` reaches itself again
through its imports, at module level, inside functions or for type checking. A cycle dodged
with a function-level import counts as a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import fti

ROOT = Path(fti.__file__).parent


def _module_names() -> dict[str, Path]:
    names = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Every fti module ``path`` imports, wherever the import statement is."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if sub in known:
                    out.add(sub)
                elif node.module in known:
                    out.add(node.module)
    return out


def cycles(prefix: str) -> list[list[str]]:
    """Import cycles among the modules under ``prefix``: strongly connected components."""
    known = _module_names()
    graph = {
        name: sorted(m for m in _imports(path, known) if m.startswith(prefix))
        for name, path in known.items()
        if name.startswith(prefix)
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_sees_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from fti.pipelines.runner import run_pipeline\n")
    assert _imports(a, _module_names()) == {"fti.pipelines.runner"}


def test_pipelines_have_no_import_cycles() -> None:
    assert cycles("fti.pipelines") == []
