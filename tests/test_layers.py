"""The package's import graph, read from the source with ast: every module sits below what
uses it. No module imports one that imports it back (directly or around a loop, counting
imports inside functions too: a lazy import is still a dependency), and nothing in
``dcgan.training`` imports ``dcgan.tracking`` (the session takes a tracker object)."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import REPO

SRC = REPO / "src"


def _module(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The ``dcgan`` modules a module's source imports: ``from a import b`` is ``a.b`` when
    that is a module, else ``a``; relative imports resolved against ``module``."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {name for name in found if name in known}


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """Every module of ``src/dcgan`` -> the ``dcgan`` modules it imports."""
    paths = {_module(p, src): p for p in (src / "dcgan").rglob("*.py")}
    return {name: _imported(ast.parse(path.read_text()), name, path.name == "__init__.py",
                            set(paths)) - {name}
            for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One loop per strongly connected group of modules (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, groups = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while (member := stack.pop()) != node:
                        group.append(member)
                        on_stack.discard(member)
                    on_stack.discard(node)
                    if group:
                        groups.append(sorted([node, *group]))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph()
    assert len(graph) > 40 and graph["dcgan.compare"] >= {"dcgan.tracking.attach"}
    assert cycles(graph) == []


def test_training_does_not_import_tracking():
    graph = import_graph()
    wrong = {(name, dep) for name, deps in graph.items() if name.startswith("dcgan.training")
             for dep in deps if dep.startswith("dcgan.tracking")}
    assert wrong == set()


def test_the_check_finds_a_loop_and_a_lazy_import(tmp_path):
    """The graph sees imports inside functions and relative ones, and a loop fails."""
    package = tmp_path / "dcgan"
    (package / "training").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "training" / "__init__.py").write_text("from .loop import Trainer\n")
    (package / "training" / "loop.py").write_text("def f():\n    from dcgan import report\n")
    (package / "report.py").write_text("from dcgan.training import loop\n")
    (package / "tracking.py").write_text("import dcgan.report\n")
    graph = import_graph(tmp_path)
    assert graph["dcgan.training"] == {"dcgan.training.loop"}
    assert graph["dcgan.tracking"] == {"dcgan.report"}
    assert cycles(graph) == [["dcgan.report", "dcgan.training.loop"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
