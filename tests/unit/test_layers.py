"""Keep the package's shape: no import circles, each layer imports only what it may, small files.

The imports are read with :mod:`ast`, not executed. For the layer rules every import counts: module
level, inside functions and under ``TYPE_CHECKING`` (a type is a dependency too). For circles only
the imports that run count: a type-only back reference (a connection naming its pool's class)
imports nothing. A rule that has a deliberate exception names it in :data:`ALLOWED`, with the reason.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "airflow_ais_etl"
MAX_LINES = 500

STDLIB_SHARED = ("airflow_ais_etl.etl.constants",)
"""Project modules (or packages) that import only the standard library, so the in-pod runtime may use them."""

AIRFLOW_FACE = ("hooks", "operators", "sensors", "triggers", "links", "decorators", "plugins")
"""Subpackages of the Airflow face; with ``service`` and ``cli`` they sit above the backends."""

ALLOWED: dict[tuple[str, str], str] = {
    (
        "airflow_ais_etl.dataplane.storage.objectstore",
        "airflow",
    ): "object-store buckets are Airflow's ObjectStoragePath, imported when such a bucket opens",
    (
        "airflow_ais_etl.cluster.gateway",
        "airflow_ais_etl.dataplane.storage",
    ): "the target gateway serves object-store buckets and writes direct puts (storage.opener)",
    (
        "airflow_ais_etl.cluster.bucketmap",
        "airflow_ais_etl.dataplane.storage.urls",
    ): "the gateway's bucket map names buckets as storage does (storage.urls)",
}
"""``(importing module, imported module or package prefix)`` pairs a layer rule lets pass, and why."""


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to a module (a project module or a top-level name)."""

    source: str
    target: str
    line: int
    typing_only: bool
    """Under ``if TYPE_CHECKING:``: read by type checkers, never run."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / PACKAGE).rglob("*.py"))}


MODULES = _modules()


def _resolve(name: str) -> str:
    """Return the project module ``name`` denotes (or its closest parent), or its top-level name."""
    if not name.startswith(PACKAGE + ".") and name != PACKAGE:
        return name.partition(".")[0]
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def _typing_only_nodes(tree: ast.AST) -> set[ast.AST]:
    """Return every node inside an ``if TYPE_CHECKING:`` block."""
    out: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for stmt in node.body:
                out.update(ast.walk(stmt))
    return out


def _imports(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    typing_only = _typing_only_nodes(tree)
    out = []
    for node in ast.walk(tree):
        hidden = node in typing_only
        if isinstance(node, ast.Import):
            out += [Import(module, _resolve(alias.name), node.lineno, hidden) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                target = submodule if submodule in MODULES else _resolve(node.module)
                out.append(Import(module, target, node.lineno, hidden))
    return [i for i in out if i.target != "__future__"]


IMPORTS = {m: _imports(m, p) for m, p in MODULES.items()}


def _under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _pkg(*parts: str) -> str:
    return ".".join((PACKAGE, *parts))


def _allowed(imp: Import) -> bool:
    return any(imp.source == src and _under(imp.target, dst) for src, dst in ALLOWED)


def _violations(layer: str, may_import: tuple[str, ...] | None, must_not: tuple[str, ...] = ()) -> list[str]:
    """List imports of modules under ``layer`` that break its rule.

    :param may_import: the only project modules the layer may import (None: any project module)
    :param must_not: modules or top-level names it must never import
    """
    bad = []
    for module, imports in IMPORTS.items():
        if not _under(module, layer):
            continue
        for imp in imports:
            internal = _under(imp.target, PACKAGE)
            refused = internal and may_import is not None and not _under(imp.target, *may_import)
            if (refused or _under(imp.target, *must_not)) and not _allowed(imp):
                bad.append(f"{MODULES[module].relative_to(ROOT)}:{imp.line} imports {imp.target}")
    return bad


def _cycles() -> list[list[str]]:
    """Return the strongly connected components of the runtime import graph that hold several modules."""
    graph = {
        m: sorted({i.target for i in imps if i.target in MODULES and i.target != m and not i.typing_only})
        for m, imps in IMPORTS.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph)))
    try:
        for module in graph:
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return found


def test_no_import_cycles() -> None:
    assert _cycles() == []


def test_model_imports_nothing_above_it() -> None:
    assert _violations(_pkg("etl"), may_import=(_pkg("etl"),)) == []


def test_runtime_imports_only_itself_and_stdlib_shared_modules() -> None:
    assert _violations(_pkg("runtime"), may_import=(_pkg("runtime"), *STDLIB_SHARED)) == []


def test_stdlib_shared_modules_import_no_project_module() -> None:
    for shared in STDLIB_SHARED:
        assert _violations(shared, may_import=(shared,)) == []


def test_dataplane_knows_no_airflow_and_no_backend() -> None:
    allowed = (
        _pkg("dataplane"),
        _pkg("etl"),
        _pkg("runtime", "http1"),
        _pkg("runtime", "filewire"),  # the file transport's wire format, shared with the pods like http1
        _pkg("runtime", "bucketfiles"),  # reading and writing a bucket's files: the pods do it too
        _pkg("runtime", "tempnames"),
        _pkg("runtime", "collector"),  # one tuning of Python's cycle collector, for pods and jobs alike
        _pkg("cluster", "base"),
    )
    assert _violations(_pkg("dataplane"), may_import=allowed, must_not=("airflow",)) == []


def test_backends_know_no_engine_service_or_airflow_face() -> None:
    above = (_pkg("dataplane"), _pkg("service"), _pkg("cli"), *(_pkg(p) for p in AIRFLOW_FACE))
    assert _violations(_pkg("cluster"), may_import=None, must_not=above) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_file_is_over_500_lines(module: str) -> None:
    path = MODULES[module]
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by job"
