"""Fixtures for the I/O layer: buckets, the target gateway and transformer processes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ais_etl.cluster.gateway import GatewayServer, new_secret, serve_gateway

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def memory_url() -> Iterator[str]:
    """Return a fresh ``memory://`` bucket URL (Airflow object storage), removed afterwards."""
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem()
    attach("memory", fs=fs)
    root = f"/t-{uuid.uuid4().hex[:12]}"
    yield f"memory://{root}"
    if fs.exists(root):
        fs.rm(root, recursive=True)


class Runtime:
    """A running ``python -m airflow_ais_etl.runtime`` process."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log_file: Path) -> None:
        self.proc = proc
        self.url = url
        self.log_file = log_file

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


_READY = re.compile(r"listening on ([0-9.]+):(\d+)")


def start_runtime(
    workdir: Path,
    code: str,
    *,
    comm_type: str,
    arg_type: str = "",
    chunk_size: int = 0,
    target_url: str = "",
    io_command: list[str] | None = None,
) -> Runtime:
    """Start the transformer server on a free port of 127.0.0.1 and wait until it listens."""
    workdir.mkdir(parents=True, exist_ok=True)
    code_dir = workdir / "code"
    code_dir.mkdir(exist_ok=True)
    (code_dir / "code.py").write_text(textwrap.dedent(code))
    env = {
        **os.environ,
        "MOD_NAME": "code",
        "AIS_ETL_CODE_DIR": str(code_dir),
        "FUNC_TRANSFORM": "transform",
        "CHUNK_SIZE": str(chunk_size) if chunk_size else "",
        "ARG_TYPE": arg_type,
        "COMM_TYPE": comm_type,
        "AIS_TARGET_URL": target_url,
        "AIS_ETL_LISTEN_HOST": "127.0.0.1",
        "AIS_ETL_LISTEN_PORT": "0",
        "AIS_ETL_WORKERS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    if io_command is not None:
        env["AIS_ETL_IO_COMMAND"] = json.dumps(io_command)
    log_file = workdir / "runtime.log"
    with open(log_file, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow_ais_etl.runtime"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = _READY.search(log_file.read_text(errors="replace"))
        if match:
            return Runtime(proc, f"http://{match[1]}:{match[2]}", log_file)
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    stop_runtime(Runtime(proc, "", log_file))
    raise RuntimeError(f"runtime did not start (exit {proc.returncode}):\n{log_file.read_text()}")


def stop_runtime(rt: Runtime) -> None:
    """Stop the server and every process of its session (its workers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(rt.proc.pid, signal.SIGKILL)
    rt.proc.wait(timeout=30)


@pytest.fixture
def runtimes() -> Iterator[Callable[..., Runtime]]:
    """Start runtimes with :func:`start_runtime`; all are killed at the end of the test."""
    started: list[Runtime] = []

    def start(*args: Any, **kwargs: Any) -> Runtime:
        rt = start_runtime(*args, **kwargs)
        started.append(rt)
        return rt

    yield start
    for rt in started:
        stop_runtime(rt)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[GatewayServer, str]]:
    """Run a target gateway in this process; yield it and its bucket map file."""
    buckets_file = str(tmp_path / "gateway" / "buckets.json")
    server, thread = serve_gateway("127.0.0.1", 0, new_secret(), buckets_file)
    try:
        yield server, buckets_file
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
