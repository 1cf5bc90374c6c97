"""Process model: workers, concurrent keep-alive clients, graceful SIGTERM, no orphans."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import threading
from typing import TYPE_CHECKING

import psutil

from airflow_ais_etl.runtime.collector import YOUNG_THRESHOLD
from tests.runtime.conftest import wait_for

if TYPE_CHECKING:
    from tests.runtime.conftest import RuntimeFactory

ECHO_PID = """
import os

def transform(data):
    return data + b"|" + str(os.getpid()).encode()
"""


def test_concurrent_keep_alive_clients(runtime: RuntimeFactory) -> None:
    server = runtime.spawn(ECHO_PID, AIS_ETL_WORKERS="2")
    assert server.log_has("workers=2")
    errors: list[str] = []
    pids: set[int] = set()
    lock = threading.Lock()

    def client(n: int) -> None:
        conn = server.connect()
        try:
            for i in range(25):
                body = f"client {n} request {i}".encode() * 50
                conn.request("PUT", f"/b/obj-{n}-{i}", body=body)
                resp = conn.getresponse()
                data = resp.read()
                head, _, pid = data.rpartition(b"|")
                if resp.status != 200 or head != body:
                    errors.append(f"{n}/{i}: {resp.status}")
                with lock:
                    pids.add(int(pid))
        except Exception as exc:
            errors.append(f"{n}: {exc!r}")
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    workers = {c.pid for c in psutil.Process(server.proc.pid).children()}
    assert len(workers) == 2
    assert pids <= workers
    assert server.proc.pid not in pids  # the parent only supervises


def test_sigterm_finishes_in_flight_request(runtime: RuntimeFactory) -> None:
    marker = runtime.tmp_path / "started"
    code = f"""
    import pathlib, time

    def transform(data):
        pathlib.Path({str(marker)!r}).write_text("x")
        time.sleep(1.0)
        return data.upper()
    """
    server = runtime.spawn(code, AIS_ETL_GRACE_SECONDS="10")
    workers = _workers(server.proc.pid, 2)
    idle = server.connect()  # an idle keep-alive connection must not hold up the stop
    idle.request("GET", "/health")
    assert idle.getresponse().read() == b"Running"
    result: dict[str, object] = {}

    def slow_request() -> None:
        status, body, resp = server.request("PUT", "/b/slow", body=b"in flight")
        result.update(status=status, body=body, connection=resp.getheader("Connection"))

    thread = threading.Thread(target=slow_request)
    thread.start()
    assert wait_for(marker.exists)
    server.proc.send_signal(signal.SIGTERM)
    thread.join(30)
    assert result == {"status": 200, "body": b"IN FLIGHT", "connection": "close"}
    assert server.wait_exit() == 0
    assert wait_for(lambda: not any(psutil.pid_exists(p) and _alive(p) for p in workers))
    assert server.log_has("stopping")
    idle.close()


def test_workers_die_with_a_killed_parent(runtime: RuntimeFactory) -> None:
    server = runtime.spawn(ECHO_PID, AIS_ETL_WORKERS="3")
    workers = _workers(server.proc.pid, 3)
    os.kill(server.proc.pid, signal.SIGKILL)
    server.wait_exit()
    assert wait_for(lambda: not any(_alive(p) for p in workers))


def test_crashed_worker_is_replaced(runtime: RuntimeFactory) -> None:
    code = """
    import os

    def transform(data):
        if data == b"crash":
            os._exit(9)
        return data
    """
    server = runtime.spawn(code, AIS_ETL_WORKERS="1")
    conn = server.connect()
    conn.request("PUT", "/b/o", body=b"crash")
    with contextlib.suppress(http.client.HTTPException, ConnectionError):
        conn.getresponse().read()
    conn.close()
    assert wait_for(lambda: "exited unexpectedly" in server.log)
    assert wait_for(lambda: len(psutil.Process(server.proc.pid).children()) == 1)
    status, body, _ = server.request("PUT", "/b/o", body=b"fine")
    assert (status, body) == (200, b"fine")


def _workers(parent: int, count: int) -> list[int]:
    """Wait until the parent forked ``count`` workers (the ready line comes before the fork)."""
    assert wait_for(lambda: len(psutil.Process(parent).children()) == count)
    return [c.pid for c in psutil.Process(parent).children()]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_workers_collect_the_young_generation_less_often_and_never_walk_start_up(
    runtime: RuntimeFactory,
) -> None:
    """``runtime.collector``: what the supervisor loaded is frozen before the fork, the threshold raised."""
    code = """
    import gc

    LOADED = [object()]  # a container made when the user's module was imported

    def transform(data):
        young = gc.get_threshold()[0]
        walked = any(o is LOADED for o in gc.get_objects())
        return f"{young} {gc.get_freeze_count() > 0} {walked}".encode()
    """
    server = runtime.spawn(code, AIS_ETL_WORKERS="2")
    status, body, _ = server.request("PUT", "/b/o", body=b"x")
    assert (status, body) == (200, f"{YOUNG_THRESHOLD} True False".encode())
