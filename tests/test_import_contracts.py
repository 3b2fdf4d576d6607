"""Import contracts of the code, read with ``ast`` (nothing is imported): ``include/`` (what runs in
production) never imports ``dev`` (the demo stack, the data generator, the benchmarks), neither at
module level nor inside a function; and neither ``include/`` nor ``dev/`` has an import cycle among
its own modules at module level."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    """``include/a/b.py`` -> ``include.a.b``; ``include/a/__init__.py`` -> ``include.a``."""
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules_of(package: str) -> dict[str, Path]:
    return {module_name(p): p for p in sorted((PROJECT_ROOT / package).rglob("*.py"))}


def imported_names(tree: ast.AST, module: str, *, top_level_only: bool) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in ``tree``: ``import a.b`` gives ``a.b``, ``from a import
    b`` gives ``a.b`` (module ``a.b``, or else a name of module ``a``); relative imports are
    resolved against ``module``.
    ``top_level_only``: only the statements executed when the module is imported (module body, and
    the bodies of its top-level if/try/with blocks), not those inside functions or classes."""
    if top_level_only:
        nodes, stack = [], list(tree.body)
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                continue
            nodes.append(node)
            stack.extend(ast.iter_child_nodes(node))
    else:
        nodes = list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: len(module.split(".")) - node.level]
                base = ".".join(package + ([base] if base else []))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def import_graph(modules: dict[str, Path], *, top_level_only: bool = True) -> dict[str, set[str]]:
    """Module -> the modules of the same set it imports (at module level, or anywhere)."""
    graph = {}
    for name, path in modules.items():
        targets = set()
        tree = ast.parse(path.read_text(), str(path))
        for _, imported in imported_names(tree, name, top_level_only=top_level_only):
            # ``from include import x`` names include.x when that is a module, else include itself
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def tangled_modules(graph: dict[str, set[str]]) -> set[str]:
    """The modules on some cycle of ``graph`` (its strongly connected components of two or more)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    tangled: set[str] = set()

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                tangled.update(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return tangled


# Modules still on a cycle once the imports inside functions count too; the list may only shrink.
# (The alert store / archive / metrics store cycle went with the split of weekly/alerts/ in issue 14:
# the series moved to weekly/series.py, which all three import.)
LAZY_CYCLE_LEFT: set[str] = set()


def test_include_never_imports_dev():
    modules = modules_of("include")
    assert len(modules) > 10, f"found only {sorted(modules)} under include/"
    offences = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        for line, imported in imported_names(tree, name, top_level_only=False):
            if imported == "dev" or imported.startswith("dev."):
                offences.append(f"{path.relative_to(PROJECT_ROOT)}:{line} imports {imported}")
    assert not offences, "include/ runs in production and must not import dev/:\n" + "\n".join(offences)


@pytest.mark.parametrize("package", ["include", "dev"])
def test_no_import_cycle_at_module_level(package):
    graph = import_graph(modules_of(package))
    cycle = find_cycle(graph)
    assert cycle is None, f"{package}/ has an import cycle at module level: {' -> '.join(cycle)}"


def test_no_new_cycle_through_lazy_imports():
    """Counting the imports inside functions too: dev/ has no cycle (the benchmarks share
    dev/bench/common.py instead of importing each other), and include/ none but the listed one
    (pipeline <-> probes went: both take airflow_run_url from include/investor_metrics/task_context.py)."""
    dev = import_graph(modules_of("dev"), top_level_only=False)
    assert find_cycle(dev) is None, f"dev/ has an import cycle: {' -> '.join(find_cycle(dev))}"
    tangled = tangled_modules(import_graph(modules_of("include"), top_level_only=False))
    assert tangled == LAZY_CYCLE_LEFT, (
        f"modules of include/ on an import cycle (lazy imports included): {sorted(tangled)}; "
        f"expected at most {sorted(LAZY_CYCLE_LEFT)}")


# ---------------------------------------------------------------- the checks themselves, on known code
def test_imported_names_sees_lazy_and_relative_imports():
    tree = ast.parse("import os\nfrom . import sibling\ndef f():\n    from dev.stack import smtp_sink\n"
                     "try:\n    import dev.bench\nexcept ImportError:\n    pass\n")
    top = {n for _, n in imported_names(tree, "include.pkg.mod", top_level_only=True)}
    every = {n for _, n in imported_names(tree, "include.pkg.mod", top_level_only=False)}
    assert top == {"os", "include.pkg.sibling", "dev.bench"}
    assert every == top | {"dev.stack.smtp_sink"}


def test_find_cycle_names_the_modules_of_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert tangled_modules({"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"c"}, "e": {"a"}}) == {
        "a", "b", "c", "d"}
    assert tangled_modules({"a": {"b"}, "b": {"c"}, "c": set()}) == set()


def test_import_graph_reads_from_package_import_as_the_module(tmp_path):
    """``from include import probes`` in include/pipeline.py is an edge pipeline -> probes."""
    root = tmp_path / "include"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "pipeline.py").write_text("from include import probes\n")
    (root / "probes.py").write_text("def f():\n    import include.archive\n"
                                    "from include.pipeline import airflow_run_url\n")
    (root / "archive.py").write_text("from include import pipeline\n")
    globals()["PROJECT_ROOT"] = tmp_path
    try:
        graph = import_graph(modules_of("include"))
    finally:
        globals()["PROJECT_ROOT"] = Path(__file__).resolve().parent.parent
    assert graph["include.pipeline"] == {"include.probes"}
    assert graph["include.probes"] == {"include.pipeline"}  # the lazy import is no module-level edge
    assert find_cycle(graph) == ["include.pipeline", "include.probes", "include.pipeline"]
