"""A real runtime process lets in as many transform calls at once as keep its cores busy.

One worker process (``AIS_ETL_WORKERS=1``) on this machine's CPUs gets 8 concurrent requests at a
time; the transform counts how many of its calls in connection threads overlap. A transform that computes (hashing with
the GIL released, as compression does) never runs more calls at once than the worker's cores; one
that waits (sleeps) soon runs all 8. Health probes are never held up.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import urllib.parse
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.runtime.callgate import process_target
from airflow_ais_etl.runtime.config import available_cpus

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.io.conftest import Runtime

pytestmark = pytest.mark.integration

COUNTING = """
import hashlib, threading, time

_lock = threading.Lock()
_now = 0
_peak = 0

def transform(data):
    # Counts the calls of connection threads; the event loop answers quick requests itself, one at
    # a time, while its worker has had no slow one for a second (runtime.server).
    global _now, _peak
    threaded = threading.current_thread() is not threading.main_thread()
    with _lock:
        _now += threaded
        _peak = max(_peak, _now)
    try:
        if data == b"compute":
            hashlib.sha256(b"x" * (24 << 20)).digest()  # releases the GIL, like zlib
        else:
            time.sleep(0.05)
    finally:
        with _lock:
            _now -= threaded
    return str(_peak).encode()
"""


def _put(url: str, body: bytes, path: str = "/b/o") -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        conn.request("PUT", path, body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _rounds(url: str, body: bytes, rounds: int) -> int:
    """Send ``rounds`` x 8 requests, 8 at a time; return the most calls that overlapped."""
    peak = 0
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for _ in range(rounds):
            answers = list(pool.map(lambda _: _put(url, body), range(8)))
            assert all(status == 200 for status, _ in answers), answers
            peak = max(peak, *(int(text) for _, text in answers))
    return peak


def test_computing_calls_run_one_per_core_and_waiting_calls_all_at_once(
    runtimes: Callable[..., Runtime], tmp_path: Path
) -> None:
    cores = process_target(available_cpus(), 1)
    compute = runtimes(tmp_path / "compute", COUNTING, comm_type="hpush://")
    assert _rounds(compute.url, b"compute", 4) <= cores
    wait = runtimes(tmp_path / "wait", COUNTING, comm_type="hpush://")
    assert _rounds(wait.url, b"wait", 6) >= 6


def test_health_is_answered_while_every_slot_computes(
    runtimes: Callable[..., Runtime], tmp_path: Path
) -> None:
    rt = runtimes(tmp_path / "busy", COUNTING, comm_type="hpush://")
    with concurrent.futures.ThreadPoolExecutor(9) as pool:
        busy = [pool.submit(_rounds, rt.url, b"compute", 2) for _ in range(1)]
        parts = urllib.parse.urlsplit(rt.url)
        for _ in range(5):
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
            conn.request("GET", "/health")
            assert conn.getresponse().status == 200
            conn.close()
        assert busy[0].result(120) >= 1
