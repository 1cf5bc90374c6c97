"""Fixtures of the Airflow-face tests: one private AIRFLOW_HOME per session, one AIS_ETL_HOME per test.

Airflow reads its home and database settings when it is first imported, so they are set here, at
collection time, before any test module of this directory imports Airflow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from tests.dag_runs import EXAMPLE_DAGS

if TYPE_CHECKING:
    from collections.abc import Iterator

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="ais-etl-airflow-home-"))
AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(_AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
}
os.environ.update(AIRFLOW_ENV)


@pytest.fixture(scope="session", autouse=True)
def _airflow_home_cleanup() -> Iterator[None]:
    yield
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the session's sqlite metadata DB once (``airflow db migrate``, ~9 s)."""
    env = {**os.environ, **AIRFLOW_ENV}
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    from airflow import settings

    if str(_AIRFLOW_HOME) not in str(settings.engine.url):  # Airflow was imported before this conftest
        settings.dispose_orm()
        settings.configure_orm()
    return _AIRFLOW_HOME


def _leaked(home: Path, before: set[int]) -> list[str]:
    """Return processes that belong to ``home`` or are new children of this test process."""
    out = []
    me = psutil.Process()
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            cwd = proc.info["cwd"] or ""
        except psutil.Error:
            continue
        if str(home) in cmd or cwd.startswith(str(home)):
            out.append(f"{proc.pid}: {cmd}")
    for child in me.children(recursive=True):
        if child.pid not in before:
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    out.append(f"{child.pid}: {' '.join(child.cmdline())}")
            except psutil.Error:
                continue
    return out


@pytest.fixture
def ais_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Give the test its own local cluster (AIS_ETL_HOME); stop everything and check nothing leaked."""
    from airflow_ais_etl.cluster.local.backend import LocalBackend

    home = tmp_path / "ais-home"
    monkeypatch.setenv("AIS_ETL_HOME", str(home))
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield home
    LocalBackend(home).shutdown()
    leaked = []
    for _ in range(50):
        leaked = _leaked(home, before)
        if not leaked:
            break
        time.sleep(0.1)
    assert not leaked, f"processes leaked: {leaked}"
