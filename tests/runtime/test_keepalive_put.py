"""Direct puts on kept-alive connections (runtime.connpool) against a real gateway and raw servers."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from airflow_ais_etl.etl.naming import uname
from airflow_ais_etl.runtime.aisproto import DirectPutError, direct_put
from airflow_ais_etl.runtime.upstream import CallbackClient
from tests.runtime.gatewaytarget import GatewayTarget, gateway_target

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


pytestmark = pytest.mark.integration

SECRET = "KeEpAlIvEs"


@pytest.fixture
def target(tmp_path: Path) -> Iterator[GatewayTarget]:
    with gateway_target(tmp_path, SECRET) as t:
        accept = t.server.process_request

        def counting(request: socket.socket, client_address: object) -> None:
            t.accepted += 1
            accept(request, client_address)  # type: ignore[arg-type]

        t.server.process_request = counting  # type: ignore[method-assign]
        yield t


def _wait(condition: Callable[[], bool]) -> None:
    """Wait (at most 30 s) for a server thread to reach a state; the caller asserts it."""
    deadline = time.monotonic() + 30
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_one_kept_alive_connection_carries_many_puts_and_gets(target: GatewayTarget) -> None:
    timeout = 123.0  # a pool of its own: no connection of another test is reused
    for i in range(25):
        assert direct_put(target.url(f"o-{i}"), f"payload {i}".encode(), timeout=timeout) == len(
            f"payload {i}"
        )
    callback = CallbackClient(f"{target.server.url}/v1/etl/_object/{SECRET}", timeout=timeout)
    for i in range(25):
        resp = callback.open("/" + quote(uname("ais", target.bucket, f"o-{i}"), safe=""), "")
        assert resp.read() == f"payload {i}".encode()
        callback.release(resp)
    assert target.accepted == 1  # 50 exchanges, one TCP connection
    assert sorted(p.name for p in target.root.iterdir()) == sorted(f"o-{i}" for i in range(25))


def test_a_put_cut_midway_on_a_kept_alive_connection_stores_nothing(target: GatewayTarget) -> None:
    conn = http.client.HTTPConnection(*target.server.server_address[:2])
    conn.request("PUT", target.path("whole"), body=b"w" * 1000)
    assert conn.getresponse().read() == b""
    sock = conn.sock
    assert sock is not None
    sock.sendall(
        f"PUT {target.path('cut')} HTTP/1.1\r\nHost: x\r\nContent-Length: 400000\r\n\r\n".encode()
        + b"c" * 200_000
    )
    _wait(lambda: bool(target.temp_files()))
    assert target.temp_files(), "the gateway should be writing the partial object by now"
    conn.close()  # the body ends 200,000 bytes early
    _wait(lambda: not target.temp_files())
    assert target.temp_files() == []
    assert not (target.root / "cut").exists()
    assert (target.root / "whole").read_bytes() == b"w" * 1000
    assert target.accepted == 1


def test_the_gateway_refuses_on_a_kept_alive_connection_what_it_refuses_on_a_new_one(
    target: GatewayTarget,
) -> None:
    (target.root / "there").write_bytes(b"here")
    conn = http.client.HTTPConnection(*target.server.server_address[:2])

    def get(path: str) -> tuple[int, bytes]:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()

    assert get(target.path("there")) == (200, b"here")
    first = conn.sock
    status, text = get(target.path("there", secret="WrOnGsEcReT"))
    assert (status, text) == (403, b"unrecognized request source\n")
    escaped = quote(f"ais/@#/{target.bucket}/a/../../etc/passwd", safe="")
    conn.request("GET", f"/v1/etl/_object/{SECRET}/{escaped}")
    resp = conn.getresponse()
    assert resp.status == 400
    assert b"invalid object name" in resp.read()
    assert conn.sock is first  # the refusals kept the connection: no body was left unread
    conn.request("PUT", target.path("forged", token="forged-token"), body=b"f" * 100)
    resp = conn.getresponse()
    assert resp.status == 403
    assert resp.getheader("Connection") == "close"  # its body stays unread: the gateway hangs up
    assert b"no running job lets pods write" in resp.read()
    assert not (target.root / "forged").exists()
    assert get(target.path("there")) == (200, b"here")  # http.client reconnects
    assert target.accepted == 2


class _RawServer:
    """Accepts connections and answers each with ``plan(connection number, request number on it)``.

    The plan returns ``"answer"`` (a 204 kept alive), ``"answer-close"`` (a 204, then the server
    closes the connection while idle) or ``"drop"`` (read the request, close without a word).
    """

    def __init__(self, plan: Callable[[int, int], str]) -> None:
        self.plan = plan
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.connections = 0
        self.requests = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://{host}:{port}/v1/etl/_object/s/obj?uuid=t"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._connection, args=(conn, self.connections), daemon=True).start()

    def _connection(self, conn: socket.socket, number: int) -> None:
        with conn, conn.makefile("rb") as rfile:
            for nth in range(1, 100):
                length = 0
                while (line := rfile.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if not line:
                    return
                rfile.read(length)
                self.requests += 1
                action = self.plan(number, nth)
                if action == "drop":
                    return
                conn.sendall(b"HTTP/1.1 204 No Content\r\nAis-Direct-Put-Length: 4\r\n\r\n")
                if action == "answer-close":
                    return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[int, int], str]], _RawServer]]:
    servers: list[_RawServer] = []

    def make(plan: Callable[[int, int], str]) -> _RawServer:
        servers.append(_RawServer(plan))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_a_connection_that_dies_with_the_request_is_retried_once_not_twice(
    raw_server: Callable[[Callable[[int, int], str]], _RawServer],
) -> None:
    server = raw_server(lambda conn, nth: "answer" if (conn, nth) == (1, 1) else "drop")
    assert direct_put(server.url, b"data", timeout=124.0) == 4
    with pytest.raises(DirectPutError, match="failed") as err:
        direct_put(server.url, b"data", timeout=124.0)  # reused: dropped; fresh: dropped again
    assert err.value.status == 502
    assert (server.connections, server.requests) == (2, 3)


def test_a_retry_on_a_fresh_connection_delivers(
    raw_server: Callable[[Callable[[int, int], str]], _RawServer],
) -> None:
    server = raw_server(lambda conn, nth: "drop" if (conn, nth) == (1, 2) else "answer")
    assert direct_put(server.url, b"data", timeout=125.0) == 4
    assert direct_put(server.url, b"data", timeout=125.0) == 4  # the reused one dies: sent again, fresh
    assert direct_put(server.url, b"data", timeout=125.0) == 4  # and that one stays in the pool
    assert (server.connections, server.requests) == (2, 4)


def test_a_fresh_connection_that_dies_is_not_retried(
    raw_server: Callable[[Callable[[int, int], str]], _RawServer],
) -> None:
    server = raw_server(lambda conn, nth: "drop")
    with pytest.raises(DirectPutError) as err:
        direct_put(server.url, b"data", timeout=126.0)
    assert err.value.status == 502
    assert (server.connections, server.requests) == (1, 1)


def test_a_connection_the_server_closed_while_idle_costs_no_failed_put(
    raw_server: Callable[[Callable[[int, int], str]], _RawServer],
) -> None:
    server = raw_server(lambda conn, nth: "answer-close")
    for _ in range(3):
        assert direct_put(server.url, b"data", timeout=127.0) == 4
    assert (server.connections, server.requests) == (3, 3)
