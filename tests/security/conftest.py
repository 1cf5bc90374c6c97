"""Fixtures of the multi-user tests: a local home (tests/local's), and a second Unix user to attack it.

Tests run as root; the attacker is ``nobody`` (uid/gid 65534), started with ``subprocess`` and
``user=``/``group=``, running the system Python with nothing but the standard library.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ais_etl.cluster.local.backend import LocalBackend
from airflow_ais_etl.service import AisEtl
from tests.local.conftest import processes_under

if TYPE_CHECKING:
    from collections.abc import Iterator

NOBODY = 65534
ATTACKER_PYTHON = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.path.exists(p)), "")


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Path]:
    """A directory every user may enter (0755, like a home's parent): only our modes protect what is inside.

    (pytest's tmp_path sits under a 0700 directory, where nobody could not even look.)
    """
    base = Path(tempfile.mkdtemp(prefix="ais-etl-shared-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def home(shared: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh local home in ``shared``; everything started under it is stopped and checked at the end."""
    h = shared / "home"
    monkeypatch.setenv("AIS_ETL_HOME", str(h))
    yield h
    LocalBackend(h).shutdown()
    leftovers = [p for p in processes_under(h) if p.is_running()]
    for p in leftovers:
        p.kill()
    assert not leftovers, f"processes left behind: {[p.cmdline() for p in leftovers]}"


@pytest.fixture
def api(home: Path) -> AisEtl:
    return AisEtl.local(str(home))


def attacker_available() -> str | None:
    """Return why the attack cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "needs root to start a process as nobody"
    if not ATTACKER_PYTHON:
        return "no system python3 that nobody may run"
    return None


def run_as_nobody(code: str, stdin: str = "", timeout: float = 60) -> Any:
    """Run ``code`` (Python, stdlib only) as ``nobody`` with ``stdin``; return the JSON it prints.

    The plan goes through stdin, not argv: the attacker's own command line must not hold the needles.
    """
    why = attacker_available()
    if why:
        pytest.fail(f"cannot run the second-user test: {why}")
    proc = subprocess.run(
        [ATTACKER_PYTHON, "-I", "-c", code],
        input=stdin,
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, f"attacker crashed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


def secret_file(tmp_path: Path, content: bytes) -> Path:
    """Write a root-only file (0600 in a 0700 directory) outside every bucket."""
    vault = tmp_path / "vault"
    vault.mkdir(mode=0o700)
    path = vault / "secret.txt"
    path.write_bytes(content)
    path.chmod(0o600)
    return path


def all_cmdlines() -> dict[int, str]:
    """Return the command line of every process on the machine (what ``ps`` shows everyone)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = (
                    (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
                )
            except OSError:
                continue
    return out
