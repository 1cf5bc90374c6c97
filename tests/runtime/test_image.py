"""The runtime image definition agrees with what the pod specs expect (no Docker engine needed)."""

from __future__ import annotations

import ast
import json
import re
import shlex
import sys
from typing import TYPE_CHECKING

from tests.runtime.conftest import REPO_ROOT

if TYPE_CHECKING:
    from pathlib import Path

DOCKER_DIR = REPO_ROOT / "docker"
DOCKERFILE = DOCKER_DIR / "runtime-python.Dockerfile"
BUILD_SCRIPT = DOCKER_DIR / "build-runtime-images.sh"
RUNTIME_DIR = REPO_ROOT / "airflow_ais_etl" / "runtime"
SHARED_MODEL_FILES = ("airflow_ais_etl/etl/__init__.py", "airflow_ais_etl/etl/constants.py")
"""Model modules the runtime imports (they import nothing), so the image carries them too."""
ENTRY_POINTS = ("airflow_ais_etl.runtime.__main__", "airflow_ais_etl.cluster.gateway")
"""What the image runs: the transformer runtime, and the gateway sidecar (Kubernetes)."""
OPTIONAL_THIRD_PARTY = {"airflow_ais_etl.dataplane.storage.objectstore": {"airflow"}}
"""Imports the image cannot satisfy, and the one module allowed to make them: object-store buckets
need Airflow's task SDK (a ``gateway_image`` that installs it), imported when such a bucket opens."""


def _instructions(text: str) -> list[tuple[str, str]]:
    """Parse a Dockerfile into (INSTRUCTION, arguments), joining continuation lines."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_contract() -> None:
    instructions = _instructions(DOCKERFILE.read_text())
    words = [w for w, _ in instructions]
    assert words[0] == "ARG"
    assert instructions[0][1] == "PYTHON_VERSION=3.11"
    assert ("FROM", "python:${PYTHON_VERSION}-slim") in instructions
    cmd = [json.loads(rest) for word, rest in instructions if word == "CMD"]
    assert cmd == [["python", "-m", "airflow_ais_etl.runtime"]]
    assert [rest for word, rest in instructions if word == "EXPOSE"] == ["8080"]
    users = [rest for word, rest in instructions if word == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    env = " ".join(rest for word, rest in instructions if word == "ENV")
    assert "PYTHONUNBUFFERED=1" in env.split()
    for src in _copied(instructions):
        assert (REPO_ROOT / src).exists(), src
    # Nothing else is installed: no pip, no Airflow in the image.
    assert not any("pip" in rest for word, rest in instructions if word == "RUN")


def _copied(instructions: list[tuple[str, str]]) -> set[str]:
    """The repository paths the Dockerfile copies (files, and directories ending in ``/``)."""
    copies = [shlex.split(rest) for word, rest in instructions if word == "COPY"]
    return {src for parts in copies for src in parts[:-1]}


def test_build_script_tags_match_python_versions() -> None:
    text = BUILD_SCRIPT.read_text()
    pairs = re.findall(r'"(airflow-ais-etl/runtime-python:(\d+\.\d+)v2) (\d+\.\d+)"', text)
    assert [tag for tag, _, _ in pairs] == [
        "airflow-ais-etl/runtime-python:3.10v2",
        "airflow-ais-etl/runtime-python:3.11v2",
        "airflow-ais-etl/runtime-python:3.12v2",
        "airflow-ais-etl/runtime-python:3.13v2",
    ]
    assert all(tag_version == base for _, tag_version, base in pairs)
    assert "-f docker/runtime-python.Dockerfile" in text
    assert "PYTHON_VERSION=${version}" in text


def test_dockerignore_keeps_the_copied_paths() -> None:
    lines = (DOCKER_DIR / "runtime-python.Dockerfile.dockerignore").read_text().splitlines()
    assert "*" in lines
    for path in _copied(_instructions(DOCKERFILE.read_text())):
        assert f"!{path}" in lines, path


def _runtime_imports(path: Path) -> set[str]:
    """Absolute imports a module makes when it runs: those under ``if TYPE_CHECKING:`` are left out,
    those inside functions (made on first use) are kept."""
    found: set[str] = set()

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        if not typing_only and isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif not typing_only and isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(ast.parse(path.read_text()), False)
    return found


def _module_file(module: str) -> Path | None:
    base = REPO_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None  # a name imported from a module, not a module


def _closure(entry_points: tuple[str, ...]) -> tuple[set[Path], set[tuple[str, str]]]:
    """The project's files the entry points import when they run (packages' ``__init__`` too), and
    the other ``(module, import)`` pairs they make."""
    files: set[Path] = set()
    outside: set[tuple[str, str]] = set()
    todo, seen = list(entry_points), set()
    while todo:
        module = todo.pop()
        path = _module_file(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        files.add(path)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        for name in _runtime_imports(path):
            if name.split(".")[0] == "airflow_ais_etl":
                todo.append(name)
            elif name.split(".")[0] not in (*sys.stdlib_module_names, "__future__"):
                outside.add((module, name))
    return files, outside


def test_the_image_ships_every_module_the_runtime_and_the_gateway_import() -> None:
    """A module missing from the image is an ImportError in every pod (the gateway sidecar on
    Kubernetes ran from an image without the modules it had been split into)."""
    copied = _copied(_instructions(DOCKERFILE.read_text()))
    files, outside = _closure(ENTRY_POINTS)
    assert REPO_ROOT / "airflow_ais_etl/cluster/sealedgrants.py" in files
    assert REPO_ROOT / "airflow_ais_etl/dataplane/storage/local.py" in files
    for path in files:
        rel = path.relative_to(REPO_ROOT).as_posix()
        assert any(rel == src or (src.endswith("/") and rel.startswith(src)) for src in copied), (
            f"the image does not ship {rel}, which the runtime or the gateway imports"
        )
    for module, name in outside:
        assert name.split(".")[0] in OPTIONAL_THIRD_PARTY.get(module, set()), f"{module} imports {name}"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_runtime_imports_only_stdlib_and_what_the_image_ships() -> None:
    shipped = {
        path.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for path in SHARED_MODEL_FILES
    }
    files = [
        *RUNTIME_DIR.rglob("*.py"),
        REPO_ROOT / "airflow_ais_etl" / "__init__.py",
        *(REPO_ROOT / path for path in SHARED_MODEL_FILES),
    ]
    assert len(files) > 5
    for path in files:
        for name in _imported_modules(path):
            top = name.split(".")[0]
            if top == "airflow_ais_etl":
                assert name.startswith("airflow_ais_etl.runtime") or name in shipped, (
                    f"{path.name} imports {name}"
                )
            else:
                assert top in sys.stdlib_module_names or top == "__future__", f"{path.name} imports {name}"
