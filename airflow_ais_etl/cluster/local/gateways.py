"""The target gateways of the local backend: one process per target serving ``AIS_TARGET_URL``.

A gateway is started on demand (when a pod of an ETL needs its target's URL), records its pid,
port under ``targets/<tid>/gateway.json`` so every process finds it, and is stopped once no pod
runs. Each ETL calls it with its own secret; the gateway serves an ETL only the buckets its running
jobs granted (``grants/``, see :mod:`airflow_ais_etl.cluster.grants`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.gateway import SECRET_ENV
from airflow_ais_etl.cluster.local.processes import log_tail, pid_alive
from airflow_ais_etl.cluster.local.state import read_json, write_json_atomic
from airflow_ais_etl.cluster.private import PRIVATE_UMASK, locked, open_private, private_dir
from airflow_ais_etl.etl.errors import EtlError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_ais_etl.cluster.local.state import LocalState

GATEWAY_PATH = "/v1/etl/_object/"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


class LocalGateways:
    """Start, find and stop the gateway process of each local target."""

    def __init__(self, state: LocalState) -> None:
        self.state = state

    def ensure(self, tid: str) -> dict[str, Any]:
        """Return the running gateway of ``tid`` (started if needed): host, port, secret, pid."""
        gdir = self.state.target_dir(tid)
        info = self._alive(gdir)
        if info:
            return info
        with locked(gdir.with_name(gdir.name + ".gateway.lock")):
            return self._alive(gdir) or self._start(tid)

    def url(self, tid: str, secret: str) -> str:
        """Return ``AIS_TARGET_URL`` of ``tid`` for the ETL whose gateway secret is ``secret``."""
        g = self.ensure(tid)
        return f"http://{g['host']}:{g['port']}{GATEWAY_PATH}{secret}"

    def stop(self, tids: Iterable[str]) -> None:
        """Stop the gateways of ``tids`` (SIGTERM, wait) and forget them. Idempotent."""
        for tid in tids:
            gdir = self.state.target_dir(tid)
            info = read_json(gdir / "gateway.json", {})
            if info:
                _terminate(int(info["pid"]))
            shutil.rmtree(gdir, ignore_errors=True)

    @staticmethod
    def _alive(gdir: Any) -> dict[str, Any]:
        info: dict[str, Any] = read_json(gdir / "gateway.json", {})
        return info if info and pid_alive(int(info["pid"])) else {}

    def _start(self, tid: str) -> dict[str, Any]:
        gdir = self.state.target_dir(tid)
        private_dir(gdir)
        out = gdir / "gateway.out"
        out.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "airflow_ais_etl.cluster.gateway", "--host", "127.0.0.1", "--port", "0"]
        argv += ["--grants", str(self.state.grants_dir())]
        env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
        with open_private(out, "wb") as stdout, open_private(gdir / "gateway.log", "ab") as stderr:
            proc = subprocess.Popen(
                argv,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                umask=PRIVATE_UMASK,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            first = out.read_text().splitlines()[:1]
            if first and first[0].startswith("listening on http://"):
                port = int(first[0].rsplit(":", 1)[1])
                info = {"pid": proc.pid, "host": "127.0.0.1", "port": port}
                write_json_atomic(gdir / "gateway.json", info)
                return info
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
        raise EtlError(f"target gateway did not start:\n{log_tail(gdir / 'gateway.log')}", target=tid)


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # collect it when this process started it
        time.sleep(0.02)
