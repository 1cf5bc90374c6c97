"""Fixtures of the Airflow-face tests: one private AIRFLOW_HOME per session, one AIS_ETL_HOME per test.

Airflow reads its home and database settings when it is first imported, so they are set here, at
collection time, before any test module of this directory imports Airflow.

Under pytest-xdist every worker is a session of its own (its own AIRFLOW_HOME and sqlite DB), but the
DB is migrated once per run: the first worker to need it migrates a template that the others copy.
"""

from __future__ import annotations

import fcntl
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


def _migrated_template(root: Path) -> Path:
    """Return a sqlite DB migrated by ``airflow db migrate`` (~9 s) under ``root``, made once per run."""
    template_home = root / "airflow-db-template"
    template = template_home / "airflow.db"
    with open(root / "airflow-db-template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other workers wait here for the first one's migration
        if not template.exists():
            template_home.mkdir(exist_ok=True)
            partial = template_home / "migrating.db"
            env = {
                **os.environ,
                **AIRFLOW_ENV,
                "AIRFLOW_HOME": str(template_home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{partial}",
            }
            proc = subprocess.run(
                [sys.executable, "-m", "airflow", "db", "migrate"],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert proc.returncode == 0, proc.stderr[-3000:]
            partial.rename(template)
    return template


_migrated: list[Path] = []


@pytest.fixture(scope="session")
def airflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Give this session's AIRFLOW_HOME a migrated sqlite metadata DB (a copy of the run's template)."""
    if _migrated:  # already done for this process (tests/kubernetes imports this fixture too)
        return _migrated[0]
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # shared by the run's workers
    template = _migrated_template(root)
    from airflow import settings

    if settings.engine is not None:
        settings.engine.dispose()  # no pooled connection may outlive the file replaced next
    shutil.copyfile(template, _AIRFLOW_HOME / "airflow.db")
    if str(_AIRFLOW_HOME) not in str(settings.engine.url):  # Airflow was imported before this conftest
        settings.dispose_orm()
        settings.configure_orm()
    _migrated.append(_AIRFLOW_HOME)
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
