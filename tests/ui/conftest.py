"""Fixtures of the browser tests: an Airflow api-server of their own, a DAG run, headless Chromium.

The api-server runs the provider's plugin with the simple auth manager and two known users (an
admin and a viewer) on a free loopback port, over a copy of the run's migrated sqlite DB. Chromium
is Debian's package driven by Playwright through ``executable_path``: no browser is downloaded.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from tests.airflow.conftest import _migrated_template
from tests.dag_runs import EXAMPLE_DAGS

if TYPE_CHECKING:
    from collections.abc import Iterator

CHROMIUM = os.environ.get("AIS_ETL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
USERS = {"admin": "admin", "viewer": "viewer"}
"""user name -> simple auth manager role."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``proc`` and everything it started (it leads its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=3)  # a graceful api-server shutdown takes 10-20 s here: nothing to keep
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@dataclass
class Site:
    """An Airflow home with its api-server (and the processes the tests start against it)."""

    root: Path
    port: int
    env: dict[str, str]
    passwords: dict[str, str]
    server: subprocess.Popen[bytes] | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``python -m airflow ARGS`` in this home, its output in ``<root>/<name>.log``."""
        with open(self.root / f"{name}.log", "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "airflow", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def wait_ready(self, timeout: float = 240) -> None:
        """Wait until the api-server answers its health check (it takes 15-40 s to start)."""
        assert self.server is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                pytest.fail(
                    f"the api-server exited ({self.server.returncode}):\n{self.log('api-server')[-3000:]}"
                )
            try:
                if requests.get(f"{self.url}/api/v2/monitor/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        pytest.fail(f"the api-server did not answer in {timeout:.0f} s:\n{self.log('api-server')[-3000:]}")

    def token(self, user: str) -> str:
        resp = requests.post(
            f"{self.url}/auth/token", json={"username": user, "password": self.passwords[user]}, timeout=30
        )
        resp.raise_for_status()
        return str(resp.json()["access_token"])


def _base_temp(factory: pytest.TempPathFactory) -> Path:
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """An Airflow home over a migrated DB copy whose api-server is starting (``wait_ready`` waits)."""
    root = tmp_path_factory.mktemp("ui-site")
    template = _migrated_template(_base_temp(tmp_path_factory))
    shutil.copyfile(template, root / "airflow.db")
    passwords = {user: secrets.token_urlsafe(12) for user in USERS}
    pw_file = root / "passwords.json"
    pw_file.write_text(json.dumps(passwords))
    pw_file.chmod(0o600)
    port = _free_port()
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIS_ETL"))}
    env = {
        **keep,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(root),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(pw_file),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIS_ETL_HOME": str(root / "ais-etl-home"),
    }
    s = Site(root=root, port=port, env=env, passwords=passwords)
    s.server = s.start(
        "api-server", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"
    )
    try:
        yield s
    finally:
        for proc in reversed(s.procs):
            _stop(proc)
        from airflow_ais_etl.cluster.local.backend import LocalBackend

        LocalBackend(env["AIS_ETL_HOME"]).shutdown()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium (Debian's package); without it the tests fail saying how to install it."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser tests need Debian's package "
            "(sudo apt-get install -y chromium; .ci/run installs it when missing), or set AIS_ETL_CHROMIUM "
            "to a Chromium binary",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def screenshots() -> Path:
    """The directory screenshots go to: ``test-results/screenshots`` (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
