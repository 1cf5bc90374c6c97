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
GATEWAY_FILES = ("airflow_ais_etl/cluster/__init__.py", "airflow_ais_etl/cluster/gateway.py")
"""The gateway sidecar runs from the runtime image (standard library only for directory buckets)."""


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
    copies = [shlex.split(rest) for word, rest in instructions if word == "COPY"]
    sources = {src for parts in copies for src in parts[:-1]}
    assert sources == {
        "airflow_ais_etl/__init__.py",
        *SHARED_MODEL_FILES,
        "airflow_ais_etl/runtime/",
        *GATEWAY_FILES,
    }
    for src in sources:
        assert (REPO_ROOT / src).exists()
    # Nothing else is installed: no pip, no Airflow in the image.
    assert not any("pip" in rest for word, rest in instructions if word == "RUN")


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
    assert "!airflow_ais_etl/__init__.py" in lines
    assert "!airflow_ais_etl/runtime/" in lines
    for path in SHARED_MODEL_FILES + GATEWAY_FILES:
        assert f"!{path}" in lines


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
