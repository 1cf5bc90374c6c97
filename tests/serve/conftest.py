"""Fixtures: ``ais-etl serve`` as a real subprocess on a free loopback port, driven by the unmodified SDK.

One server per test module (a start costs ~2 s), each with its own private home and bucket root;
at the end the server gets SIGTERM, its ETL pods are shut down, and no process may be left behind.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
from aistore.sdk import Client
from aistore.sdk.retry_config import RetryConfig
from tenacity import Retrying, stop_after_attempt
from urllib3.util.retry import Retry

from airflow_ais_etl.cluster.local.backend import LocalBackend
from tests.local.conftest import processes_under

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

UPPER_CODE = "def transform(data):\n    return data.upper()\n"
ARGS_CODE = "def transform(data, path, etl_args):\n    return data + b'|' + etl_args.encode()\n"
REVERSE_CODE = "def transform(data, path, etl_args):\n    return data[::-1]\n"
RUNTIME_IMAGE = "airflow-ais-etl/runtime-python:3.11v2"


@dataclass
class Served:
    """A running ``ais-etl serve``: its URL, home, bucket root and process."""

    url: str
    home: Path
    buckets: Path
    proc: subprocess.Popen[bytes]
    token: str = ""

    def client(self, *, token: str | None = None) -> Client:
        """An SDK client that fails fast (the SDK's default retries a failure for a minute)."""
        once = RetryConfig(
            http_retry=Retry(total=0, connect=0, read=0),
            network_retry=Retrying(stop=stop_after_attempt(1), reraise=True),
        )
        return Client(self.url, retry_config=once, token=self.token if token is None else token)


def start_server(tmp: Path, *extra: str, token: str = "", targets: int = 2) -> Served:
    home, buckets = tmp / "home", tmp / "buckets"
    LocalBackend(home, default_targets=targets).targets()  # the cluster the server finds
    env = {**os.environ, "AIS_ETL_HOME": str(home)}
    args = [
        sys.executable,
        "-m",
        "airflow_ais_etl.cli",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--buckets",
        str(buckets),
    ]
    if token:
        token_file = tmp / "token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        args += ["--token-file", str(token_file)]
    proc = subprocess.Popen([*args, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline().decode() if ready else ""
    if "listening on " not in line:
        proc.kill()
        raise AssertionError(
            f"ais-etl serve did not start: {line!r} {proc.stderr.read().decode() if proc.stderr else ''}"
        )
    url = line.split("listening on ", 1)[1].split()[0]
    return Served(url=url, home=home, buckets=buckets, proc=proc, token=token)


def stop_server(served: Served) -> None:
    served.proc.send_signal(signal.SIGTERM)
    try:
        served.proc.wait(30)
    except subprocess.TimeoutExpired:
        served.proc.kill()
        served.proc.wait()
    LocalBackend(served.home).shutdown()
    deadline = time.monotonic() + 10
    while (
        left := [p for p in processes_under(served.home) if p.is_running()]
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
    for p in left:
        p.kill()
    assert not left, f"processes left behind: {[p.cmdline() for p in left]}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start_server(tmp_path_factory.mktemp("serve"))
    yield server
    stop_server(server)


@pytest.fixture
def client(served: Served) -> Client:
    return served.client()


@pytest.fixture(scope="module")
def code_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Directories holding ``code.py`` for the runtime image (AIS_ETL_CODE_DIR)."""
    out = {}
    for name, code in (("upper", UPPER_CODE), ("args", ARGS_CODE), ("reverse", REVERSE_CODE)):
        d = tmp_path_factory.mktemp(f"code-{name}")
        (d / "code.py").write_text(code)
        out[name] = d
    return out
