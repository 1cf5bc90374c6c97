"""The worker event loop: inline small requests, hand-offs to threads and back, odd clients."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import TYPE_CHECKING

import psutil

from tests.runtime.conftest import wait_for

if TYPE_CHECKING:
    from tests.runtime.conftest import RuntimeFactory

REVERSE = "def transform(data):\n    return data[::-1]\n"
SLOW_ONCE = """
import time

def transform(data):
    if data == b"slow":
        time.sleep(0.3)
    return data[::-1]
"""


def put(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"PUT %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n" % (path.encode(), extra, len(body))
        + body
    )


def chunked_put(path: str, pieces: list[bytes]) -> bytes:
    out = b"PUT %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % path.encode()
    for piece in pieces:
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


class Reader:
    """Read ``Content-Length`` responses one by one from a raw socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _more(self) -> None:
        data = self.sock.recv(1 << 20)
        assert data, "server closed the connection"
        self.buf += data

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        while len(self.buf) < length:
            self._more()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def workers_of(pid: int) -> set[int]:
    return {c.pid for c in psutil.Process(pid).children()}


def test_many_keep_alive_connections(runtime: RuntimeFactory) -> None:
    server = runtime.spawn(REVERSE)
    socks = [connect(server.port) for _ in range(100)]
    readers = [Reader(s) for s in socks]
    try:
        for round_no in range(3):
            for i, sock in enumerate(socks):
                sock.sendall(put(f"/b/o{i}", b"%d-%d" % (i, round_no)))
            for i, reader in enumerate(readers):
                status, headers, body = reader.response()
                assert status == 200
                assert "connection" not in headers
                assert body == (b"%d-%d" % (i, round_no))[::-1]
    finally:
        for sock in socks:
            sock.close()


def test_pipelined_requests_on_one_connection(runtime: RuntimeFactory) -> None:
    server = runtime.spawn(REVERSE)
    bodies = [os.urandom(n) for n in (0, 1, 4096, 100_000, 7)]
    with connect(server.port) as sock:
        sock.sendall(b"".join(put("/b/p", body) for body in bodies) + b"GET /health HTTP/1.1\r\n\r\n")
        reader = Reader(sock)
        for body in bodies:
            status, _, got = reader.response()
            assert (status, got) == (200, body[::-1])
        assert reader.response()[::2] == (200, b"Running")


def test_request_split_across_many_segments(runtime: RuntimeFactory) -> None:
    server = runtime.spawn(REVERSE)
    request = put("/b/split", b"0123456789" * 30) + put("/b/next", b"abc")
    with connect(server.port) as sock:
        for i in range(0, len(request), 3):
            sock.sendall(request[i : i + 3])
            if i % 30 == 0:
                time.sleep(0.001)  # let the server see separate segments
        reader = Reader(sock)
        assert reader.response()[::2] == (200, (b"0123456789" * 30)[::-1])
        assert reader.response()[::2] == (200, b"cba")


def test_client_gone_mid_body_leaves_the_worker_serving(runtime: RuntimeFactory) -> None:
    server = runtime.spawn(REVERSE)
    assert wait_for(lambda: len(workers_of(server.proc.pid)) == 2)  # both workers forked
    pids = workers_of(server.proc.pid)
    for _ in range(6):  # reach both workers
        with connect(server.port) as sock:
            sock.sendall(b"PUT /b/cut HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + b"x" * 100)
        with connect(server.port) as sock:
            sock.sendall(b"PUT /b/cut HTTP/1.1\r\nContent-Len")  # gone in the middle of the head
    with connect(server.port) as sock:
        sock.sendall(put("/b/after", b"still here"))
        assert Reader(sock).response()[::2] == (200, b"ereh llits")
    assert workers_of(server.proc.pid) == pids
    assert "Traceback" not in server.log


def test_small_and_streamed_requests_mix_on_one_connection(runtime: RuntimeFactory) -> None:
    server = runtime.spawn(REVERSE)
    big = os.urandom(600_000)  # above the inline limit: read by a connection thread
    with connect(server.port) as sock:
        reader = Reader(sock)
        sock.sendall(put("/b/1", b"one"))
        assert reader.response()[::2] == (200, b"eno")
        sock.sendall(chunked_put("/b/2", [b"ab", b"cd"]))
        assert reader.response()[::2] == (200, b"dcba")
        sock.sendall(put("/b/3", b"three"))
        assert reader.response()[::2] == (200, b"eerht")
        sock.sendall(put("/b/4", big))
        assert reader.response()[::2] == (200, big[::-1])
        # Pipelined: small, chunked, large, small in one go.
        sock.sendall(
            put("/b/5", b"x1") + chunked_put("/b/6", [b"y", b"z"]) + put("/b/7", big) + put("/b/8", b"w")
        )
        assert reader.response()[::2] == (200, b"1x")
        assert reader.response()[::2] == (200, b"zy")
        assert reader.response()[::2] == (200, big[::-1])
        assert reader.response()[::2] == (200, b"w")


def test_streamed_transform_on_a_keep_alive_connection(runtime: RuntimeFactory) -> None:
    code = """
    def transform(reader, writer):
        for chunk in reader:
            writer.write(chunk.upper())
    """
    server = runtime.spawn(code, CHUNK_SIZE="4")
    with connect(server.port) as sock:
        reader = Reader(sock)
        for i in range(3):  # each one goes to a connection thread and back to the loop
            sock.sendall(put("/b/s", b"stream %d" % i) + put("/b/s", b"x"))
            assert reader.response()[::2] == (200, b"STREAM %d" % i)
            assert reader.response()[::2] == (200, b"X")


def test_slow_transform_does_not_hold_up_other_connections(runtime: RuntimeFactory) -> None:
    server = runtime.spawn(SLOW_ONCE, AIS_ETL_WORKERS="1")
    results: list[bytes] = []

    def slow() -> None:
        with connect(server.port) as sock:
            for _ in range(3):
                sock.sendall(put("/b/slow", b"slow"))
                results.append(Reader(sock).response()[2])

    thread = threading.Thread(target=slow)
    thread.start()
    with connect(server.port) as sock:
        reader = Reader(sock)
        for i in range(50):
            sock.sendall(put("/b/fast", b"%d" % i))
            assert reader.response()[::2] == (200, (b"%d" % i)[::-1])
    thread.join(30)
    assert results == [b"wols"] * 3


def test_error_answers_on_the_inline_path(runtime: RuntimeFactory) -> None:
    code = """
    def transform(data):
        if data == b"boom":
            raise ValueError("exploded")
        return data
    """
    server = runtime.spawn(code)
    with connect(server.port) as sock:
        reader = Reader(sock)
        sock.sendall(put("/b/ok", b"fine") + put("/b/bad%20one", b"boom") + put("/b/never", b"x"))
        assert reader.response()[::2] == (200, b"fine")
        status, headers, body = reader.response()
        assert status == 500
        assert b"/b/bad one" in body
        assert b"exploded" in body
        # A failed transform is an answer like any other: the connection stays usable.
        assert "connection" not in headers
        assert reader.response()[::2] == (200, b"x")
