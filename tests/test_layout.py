"""The house: every module imports, the package import graph has no cycle, data flows one way.

The graph is read from the source (every ``import``, at module level or inside a function, and
``TYPE_CHECKING`` ones too): a node is a package (a folder with ``__init__.py``) or a module
directly under ``lrscope/``; an edge A -> B means some module of A imports something of B.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections import defaultdict
from pathlib import Path

import pytest

import lrscope

ROOT = Path(lrscope.__file__).parent


def _modules() -> list[str]:
    names = ["lrscope"]
    for info in pkgutil.walk_packages([str(ROOT)], prefix="lrscope."):
        names.append(info.name)
    return sorted(names)


def _file(module: str) -> Path:
    path = ROOT.parent / Path(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _node(module: str) -> str:
    """The package a module belongs to; top-level modules (errors, rng, ...) are their own."""
    parts = module.split(".")
    if _file(module).name == "__init__.py":
        return module
    parent = ".".join(parts[:-1])
    return module if parent == "lrscope" else parent


def _imports(module: str) -> set[str]:
    tree = ast.parse(_file(module).read_text(encoding="utf-8"))
    package = module if _file(module).name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            # `from lrscope import schedules` imports the subpackage, not the root's contents
            modules = [f"{base}.{alias.name}" for alias in node.names
                       if base.startswith("lrscope") and _exists(f"{base}.{alias.name}")]
            found.update(modules)
            if len(modules) < len(node.names):
                found.add(base)
    return found


def _exists(module: str) -> bool:
    return _file(module).exists()


def _resolve(name: str) -> str | None:
    """The lrscope module ``name`` refers to (an attribute import resolves to its module)."""
    while name.startswith("lrscope"):
        if _exists(name):
            return name
        name = name.rsplit(".", 1)[0] if "." in name else ""
    return None


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for module in _modules():
        for name in _imports(module):
            target = _resolve(name)
            if target is None:
                continue
            a, b = _node(module), _node(target)
            if a != b:
                edges[a].add(b)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


@pytest.mark.parametrize("module", _modules())
def test_every_module_imports(module):
    if module.startswith("lrscope.engines.colossalai") and \
            importlib.util.find_spec("colossalai") is None:
        pytest.skip("colossalai is not installed")
    if module == "lrscope.integrations.lightning" and importlib.util.find_spec("lightning") is None:
        pytest.skip("lightning is not installed")
    if module == "lrscope.__main__":
        pytest.skip("runs the CLI when imported (python -m lrscope)")
    importlib.import_module(module)


def test_the_package_import_graph_has_no_cycle():
    edges = _graph()
    assert {"lrscope.rangetest", "lrscope.trials", "lrscope.study"} <= set(edges)  # it sees
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


def test_data_flows_one_way():
    edges = _graph()
    below = {  # package -> packages it must never import
        "lrscope.engines": {"lrscope.rangetest", "lrscope.trials", "lrscope.study",
                            "lrscope.outputs"},
        "lrscope.schedules": {"lrscope.rangetest", "lrscope.trials", "lrscope.study",
                              "lrscope.engines", "lrscope.data"},
        "lrscope.trials": {"lrscope.study", "lrscope.config"},
        "lrscope.study": {"lrscope.config"},
        "lrscope.outputs.report": {"lrscope.trials", "lrscope.engines", "lrscope.config"},
    }
    for package, forbidden in below.items():
        reached = {b for a, targets in edges.items() if a == package or a.startswith(package + ".")
                   for b in targets}
        assert not reached & forbidden, (package, sorted(reached & forbidden))


def test_nothing_in_the_library_imports_the_cli_or_pydantic_outside_config():
    for module in _modules():
        if module.startswith(("lrscope.cli", "lrscope.__main__")):
            continue
        names = _imports(module)
        assert not any(n == "lrscope.cli" or n.startswith("lrscope.cli.") for n in names), module
        if not module.startswith("lrscope.config"):
            assert not any(n.split(".")[0] in ("pydantic", "pydantic_core") for n in names), module


def _module_graph() -> dict[str, set[str]]:
    """Module -> the lrscope modules it imports (a package's import is its ``__init__``)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for module in _modules():
        for name in _imports(module):
            target = _resolve(name)
            if target is not None and target != module:
                edges[module].add(target)
    return edges


def _within(package: str, module: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_issue17_item4_the_study_does_not_import_outputs():
    """The study hands its records to a sink; "run, then report" sits above study and outputs."""
    found = sorted((module, target) for module, targets in _module_graph().items()
                   if _within("lrscope.study", module)
                   for target in targets if _within("lrscope.outputs", target))
    assert not found, found


# Circles another change of issue 17 removes on its own branch (item 1: the runners behind an
# interface). The test fails when one is gone, so that its entry is deleted with it.
def test_issue17_item4_no_two_modules_import_each_other_in_a_circle():
    edges = _module_graph()
    assert {"lrscope.study.run", "lrscope.outputs.report.sections"} <= set(edges)  # it sees
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])
