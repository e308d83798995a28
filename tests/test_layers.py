"""The import layering of docs/architecture.md: lower layers never import higher ones, and no
two modules import each other, directly or around a circle."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"layer violation: {{name}} imported")
sys.meta_path.insert(0, Block())
import {module}
"""

ABOVE_CORE = {"probes", "cli", "vinfo.experiments"}


@pytest.mark.parametrize(
    ("module", "blocked"),
    [
        ("bdrate", {"vinfo", "probes", "cli", "torch"}),
        ("bdrate.plot", {"vinfo", "probes", "cli", "torch"}),
        ("vinfo.io", ABOVE_CORE),
        ("vinfo.figures", ABOVE_CORE | {"torch", "vinfo.models", "vinfo.data", "vinfo.train"}),
        ("probes.grid", {"cli", "vinfo.experiments"}),
        ("vinfo.experiments.rd_collect", {"cli"}),
        ("vinfo.lock", ABOVE_CORE | {"torch", "vinfo.models", "vinfo.data", "vinfo.train"}),
        ("vinfo.registry", ABOVE_CORE),
        ("vinfo.progress", ABOVE_CORE | {"torch", "vinfo.models", "vinfo.data", "vinfo.train"}),
        ("vinfo.metrics", ABOVE_CORE),
        ("vinfo.data", ABOVE_CORE),
        ("vinfo.models", ABOVE_CORE),
        ("vinfo.coding", ABOVE_CORE),
        ("vinfo.train", ABOVE_CORE),
        ("probes", {"cli", "vinfo.experiments"}),
        ("probes.report", {"cli", "vinfo.experiments"}),
        ("vinfo.experiments.rd", {"cli"}),
        ("vinfo.experiments.results", {"cli", "probes", "vinfo.experiments.sweep",
                                       "vinfo.experiments.reproduce",
                                       "vinfo.experiments.report"}),
        ("vinfo.experiments.analysis", {"cli"}),
        ("vinfo.experiments.report", {"cli"}),
        ("vinfo.experiments.reproduce", {"cli"}),
    ],
)
def test_module_imports_without_higher_layers(module, blocked):
    code = BLOCKER.format(blocked=sorted(blocked), module=module)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]


# no import cycle between modules ------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vinfo", "probes", "bdrate", "cli")


def _modules() -> dict[str, Path]:
    """Dotted name → file of every module of the packages (a package is its ``__init__``)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the modules of the packages it imports.

    Every import statement counts, wherever it is: at module level, under ``TYPE_CHECKING``
    or inside a function. An import moved into a function still ties two modules in a circle,
    so it is no way out of one. ``from a.b import c`` imports the module ``a.b.c`` if there is
    one, else ``a.b``.
    """
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from the package, level - 1 steps up
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                imported |= {f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules
                             else source for alias in node.names}
        graph[name] = {target for target in imported if target in modules and target != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_cycle_check_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert "vinfo.experiments.results" in graph["vinfo.experiments.report"]  # module level
    assert "bdrate.plot" in graph["cli.bdrate"]  # inside a function
    assert "probes.bundles" in graph["probes"]  # a package's __init__


def test_no_import_cycle_between_modules():
    graph = import_graph()
    cycles = import_cycles(graph)
    details = ["; ".join(f"{m} -> {', '.join(sorted(graph[m] & set(c)))}" for m in c)
               for c in cycles]
    assert not cycles, details
