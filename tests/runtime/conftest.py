"""Real runtime processes and a small callback target for the runtime tests."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "AbCdEfGhIj"
START_TIMEOUT = 20.0


class RuntimeServer:
    """One ``python -m airflow_ais_etl.runtime`` process with its captured stderr."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.port = 0
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if "listening on " in line and not self.port:
                self.port = int(line.rsplit(":", 1)[1])
                self._ready.set()
        self._ready.set()

    def wait_ready(self) -> None:
        """Block until the server listens (or exited)."""
        assert self._ready.wait(START_TIMEOUT), "runtime did not start:\n" + self.log

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def log_has(self, text: str, timeout: float = 10.0) -> bool:
        """Wait until ``text`` shows up in the captured stderr (read by a background thread)."""
        return wait_for(lambda: text in self.log, timeout)

    def wait_exit(self, timeout: float = 20.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        conn = self.connect()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, data, resp
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIS_", "POD_IP"))}
    for key in ("MOD_NAME", "FUNC_TRANSFORM", "CHUNK_SIZE", "ARG_TYPE", "COMM_TYPE", "FLAGS"):
        env.pop(key, None)
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["AIS_ETL_LISTEN_HOST"] = "127.0.0.1"
    env["AIS_ETL_LISTEN_PORT"] = "0"
    env["AIS_ETL_WORKERS"] = "2"
    env["AIS_ETL_GRACE_SECONDS"] = "10"
    return env


class RuntimeFactory:
    """Start runtime servers for a test and stop every one of them afterwards."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.servers: list[RuntimeServer] = []
        self._count = 0

    @property
    def next_code_file(self) -> Path:
        """Where the next :meth:`spawn` writes its user code (io commands name it)."""
        return self.tmp_path / f"code{self._count + 1}" / "code.py"

    def spawn(self, code: str | None, *, wait: bool = True, **env_overrides: str) -> RuntimeServer:
        self._count += 1
        code_dir = self.tmp_path / f"code{self._count}"
        code_dir.mkdir()
        if code is not None:
            (code_dir / "code.py").write_text(textwrap.dedent(code))
        env = base_env(self.tmp_path)
        env["AIS_ETL_CODE_DIR"] = str(code_dir)
        env.update(env_overrides)
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow_ais_etl.runtime"],
            env=env,
            cwd=str(self.tmp_path),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        server = RuntimeServer(proc)
        self.servers.append(server)
        if wait:
            server.wait_ready()
        return server

    def close(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[RuntimeFactory]:
    factory = RuntimeFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()


class CallbackTarget:
    """A stand-in for the target's ``/v1/etl/_object/<secret>/<escaped uname>`` endpoint."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.seen: list[tuple[str, str]] = []  # (raw path after the secret, raw query)
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                raw_path, _, query = self.path.partition("?")
                prefix = f"/v1/etl/_object/{SECRET}/"
                if not raw_path.startswith("/v1/etl/_object/"):
                    self._send(404, b"no such endpoint")
                    return
                if not raw_path.startswith(prefix):
                    self._send(400, b"unrecognized request source")
                    return
                rest = raw_path[len(prefix) :]
                target.seen.append((rest, query))
                uname = unquote(rest)
                data = target.objects.get(uname)
                if data is None:
                    self._send(404, f"object {uname} does not exist".encode())
                    return
                self._send(200, data)

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = f"{self.base}/v1/etl/_object/{SECRET}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def callback() -> Iterator[CallbackTarget]:
    target = CallbackTarget()
    try:
        yield target
    finally:
        target.close()


def wait_for(predicate: object, timeout: float = 10.0) -> bool:
    """Poll ``predicate()`` until it is true; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False
