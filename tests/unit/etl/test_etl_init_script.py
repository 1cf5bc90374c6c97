"""Run the init container's script for real: code and requirements must arrive byte-exact (§2.1 fix)."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ais_etl.etl.msg import InitCodeMsg
from airflow_ais_etl.etl.podtemplate import code_env, code_pod_spec
from airflow_ais_etl.etl.validation import validate

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration  # every test runs the init script in a real shell

SHELLS = [shell for shell in ("sh", "dash", "bash") if shutil.which(shell)]
TRICKY = (
    "-n -e \\c\n"
    'print("a\\nb\\tc")  # backslash escapes stay literal \\0 \\x41\n'
    "s = '$HOME ${PATH} `id` $(id) %s %d %%'\n"
    "u = 'ü€𝄞'\r\n"
    "\ttabbed\n\n\n"
)


def init_container(code: str, deps: str | None) -> dict[str, Any]:
    msg = validate(InitCodeMsg(name="md5-etl", code=code, dependencies=deps, runtime="python3.11v2"))
    assert isinstance(msg, InitCodeMsg)
    container = code_pod_spec(msg)["spec"]["initContainers"][0]
    container["_env"] = code_env(msg)
    return container


def run_script(
    tmp_path: Path, shell: str, code: str, deps: str | None, python_rc: int = 0
) -> tuple[int, Path]:
    container = init_container(code, deps)
    assert container["command"][:2] == ["sh", "-c"]
    script = container["command"][2]
    dst, runtime, fake_bin = tmp_path / "dst", tmp_path / "runtime", tmp_path / "bin"
    for folder in (dst, runtime, fake_bin):
        folder.mkdir()
    record = tmp_path / "python-args"
    fake = fake_bin / "python"
    fake.write_text(
        f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done > "{record}"\nexit {python_rc}\n'
    )
    fake.chmod(0o755)
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {
        "AIS_ETL_DST_DIR": "/dst",
        "AIS_ETL_RUNTIME_DIR": "/runtime",
        "HOME": "/scratch",  # an emptyDir: the root file system is read-only
        "TMPDIR": "/scratch",
    }
    env.pop("HOME")
    env.pop("TMPDIR")
    env.update(container["_env"])
    env.update(
        AIS_ETL_DST_DIR=str(dst),
        AIS_ETL_RUNTIME_DIR=str(runtime),
        PATH=f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    proc = subprocess.run([shell, "-c", script], env=env, capture_output=True, timeout=30, check=False)
    return proc.returncode, tmp_path


@pytest.mark.parametrize("shell", SHELLS)
def test_code_arrives_byte_exact_without_pip(tmp_path: Path, shell: str) -> None:
    rc, root = run_script(tmp_path, shell, TRICKY, None)
    assert rc == 0
    assert (root / "dst" / "code.py").read_bytes() == TRICKY.encode("utf-8")
    assert (root / "dst" / "requirements.txt").read_bytes() == b""
    assert not (root / "python-args").exists()  # pip is not run for empty requirements


@pytest.mark.parametrize("shell", SHELLS)
def test_requirements_are_installed_into_the_runtime_dir(tmp_path: Path, shell: str) -> None:
    deps = "numpy==2.0  # \\n not a newline\nrequests>=2\n"
    rc, root = run_script(tmp_path, shell, "def transform(b):\n    return b", deps)
    assert rc == 0
    assert (root / "dst" / "code.py").read_text() == "def transform(b):\n    return b"
    assert (root / "dst" / "requirements.txt").read_bytes() == deps.encode()
    assert (root / "python-args").read_text().splitlines() == [
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--no-cache-dir",
        "--target",
        str(root / "runtime"),
        "-r",
        str(root / "dst" / "requirements.txt"),
    ]


@pytest.mark.parametrize("shell", SHELLS)
def test_pip_failure_fails_the_init_container(tmp_path: Path, shell: str) -> None:
    rc, _ = run_script(tmp_path, shell, "x = 1\n", "nonexistent-package\n", python_rc=3)
    assert rc == 3
