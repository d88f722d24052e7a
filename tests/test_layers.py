"""No import cycle between the modules of one package, function-level imports included."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import regtui

ROOT = Path(regtui.__file__).parent.parent

#: Packages whose modules must not import each other in a cycle (widen as packages are split).
ACYCLIC_PACKAGES = ("regtui.fixes", "regtui.tui", "regtui.runtimes.containerd", "regtui.runtimes.crio",
                    "regtui.runtimes.docker")


def _modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted name -> file of every module under ``package`` (sub-packages included)."""
    base = root.joinpath(*package.split("."))
    out = {}
    for path in sorted(base.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(tree: ast.Module, module: str, is_package: bool) -> list[tuple[str, list[str]]]:
    """(module, names taken from it) of every import in ``tree``: in functions and under ``if TYPE_CHECKING`` too."""
    here = module.split(".") if is_package else module.split(".")[:-1]
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                source = ".".join(here[: len(here) - node.level + 1] + ([source] if source else []))
            out.append((source, [a.name for a in node.names]))
    return out


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (module-level and function-level imports)."""
    modules = _modules(root, package)

    def nearest(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for source, names in _imports(ast.parse(path.read_text(), str(path)), name, path.stem == "__init__"):
            # ``from pkg import mod`` imports the module ``pkg.mod``; ``from mod import name`` imports ``mod``.
            submodules = {f"{source}.{n}" for n in names} & modules.keys()
            found |= submodules
            if len(submodules) < max(len(names), 1):
                found.add(nearest(source))
        graph[name] = found - {name, ""}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` (``[]`` when there is none)."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return []


@pytest.mark.parametrize("package", ACYCLIC_PACKAGES)
def test_no_import_cycle_within_package(package: str) -> None:
    """The modules of the package import each other without a cycle, counting imports inside functions."""
    graph = import_graph(ROOT, package)
    assert len(graph) > 3, graph
    assert find_cycle(graph) == []


def test_cycle_through_function_level_import_is_found(tmp_path: Path) -> None:
    """A cycle hidden behind an import inside a function, or under ``if TYPE_CHECKING``, is reported."""
    pkg = tmp_path / "demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from demo.engine import run\n")
    (pkg / "engine.py").write_text("from demo import helpers\n\ndef run():\n    from demo.catalogue import table\n")
    (pkg / "catalogue.py").write_text("from .helpers import edit\ntable = {}\n")
    (pkg / "helpers.py").write_text("def edit():\n    pass\n")
    graph = import_graph(tmp_path, "demo")
    assert graph == {"demo": {"demo.engine"}, "demo.engine": {"demo.helpers", "demo.catalogue"},
                     "demo.catalogue": {"demo.helpers"}, "demo.helpers": set()}
    assert find_cycle(graph) == []
    for helpers in ("def edit():\n    from demo.engine import run\n",
                    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from demo.engine import run\n"):
        (pkg / "helpers.py").write_text(helpers)
        cycle = find_cycle(import_graph(tmp_path, "demo"))
        assert {"demo.engine", "demo.helpers"} <= set(cycle)
