"""Failure modes: errors fail requests (never a truncated 200) and bad user code fails startup."""

from __future__ import annotations

import http.client
import socket
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.runtime.conftest import RuntimeFactory

from airflow_ais_etl.runtime.supervisor import EXIT_CONFIG, EXIT_USER_CODE


def test_raise_before_streaming_is_500_with_path(runtime: RuntimeFactory) -> None:
    code = """
    def transform(data):
        raise ValueError("cannot decode " + str(len(data)))
    """
    server = runtime.spawn(code)
    status, body, _ = server.request("PUT", "/src/dir/a%20b.jpg", body=b"12345")
    assert status == 500
    assert b"ValueError: cannot decode 5" in body
    assert b"src/dir/a b.jpg" in body
    assert server.log_has("ValueError: cannot decode 5")
    assert server.log_has("Traceback")
    # The connection stays usable after a failure.
    status, _, _ = server.request("GET", "/health")
    assert status == 200


def test_chunked_raise_before_any_output_is_500(runtime: RuntimeFactory) -> None:
    code = """
    def transform(reader, writer):
        next(iter(reader))
        writer.write(b"small")
        raise RuntimeError("late but nothing sent yet")
    """
    server = runtime.spawn(code, CHUNK_SIZE="16")
    status, body, _ = server.request("PUT", "/b/o", body=b"x" * 100)
    assert status == 500
    assert b"RuntimeError: late but nothing sent yet" in body


def test_chunked_raise_after_streaming_aborts(runtime: RuntimeFactory) -> None:
    code = """
    def transform(reader, writer):
        for chunk in reader:
            writer.write(chunk * 1024)
        raise RuntimeError("boom after streaming")
    """
    server = runtime.spawn(code, CHUNK_SIZE="1024")
    conn = server.connect()
    conn.request("PUT", "/b/o", body=b"y" * 4096)
    resp = conn.getresponse()
    assert resp.status == 200  # headers were already out...
    with pytest.raises((http.client.IncompleteRead, ConnectionError)):
        resp.read()  # ...but the body never completes: the client sees an error
    conn.close()
    assert server.log_has("aborted after streaming began")
    assert server.log_has("boom after streaming")


def test_bad_return_type_is_500(runtime: RuntimeFactory) -> None:
    code = """
    def transform(data):
        return data.decode()
    """
    server = runtime.spawn(code)
    status, body, _ = server.request("PUT", "/b/o", body=b"abc")
    assert status == 500
    assert b"returned str, expected bytes" in body


def test_writer_rejects_str(runtime: RuntimeFactory) -> None:
    code = """
    def transform(reader, writer):
        writer.write("text")
    """
    server = runtime.spawn(code, CHUNK_SIZE="8")
    status, body, _ = server.request("PUT", "/b/o", body=b"abc")
    assert status == 500
    assert b"bytes-like" in body


def test_import_error_exits_before_listening(runtime: RuntimeFactory) -> None:
    code = """
    import no_such_module_anywhere

    def transform(data):
        return data
    """
    server = runtime.spawn(code, wait=False)
    assert server.wait_exit() == EXIT_USER_CODE
    assert server.port == 0  # never listened
    assert server.log_has("Traceback")
    assert server.log_has("ModuleNotFoundError: No module named 'no_such_module_anywhere'")


@pytest.mark.parametrize(
    ("code", "env", "expected"),
    [
        ("def other(data):\n    return data\n", {}, "no function named 'transform'"),
        ("def transform(data):\n    return data\n", {"FUNC_TRANSFORM": "missing_fn"}, "'missing_fn'"),
        ("def transform(data):\n    return data\n", {"CHUNK_SIZE": "1024"}, "CHUNK_SIZE > 0 requires"),
        ("def transform(reader, writer):\n    pass\n", {}, "called with one argument"),
        (None, {}, "does not exist"),
    ],
)
def test_bad_user_code_exits(
    runtime: RuntimeFactory, code: str | None, env: dict[str, str], expected: str
) -> None:
    server = runtime.spawn(code, wait=False, **env)
    assert server.wait_exit() == EXIT_USER_CODE
    assert expected in server.log


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"COMM_TYPE": "hpull://"}, "AIS_TARGET_URL must be set"),
        ({"COMM_TYPE": "hpush"}, "COMM_TYPE 'hpush' is not one of"),
        ({"ARG_TYPE": "url"}, "cannot be used with COMM_TYPE 'hpush://'"),
        ({"CHUNK_SIZE": "-1"}, "CHUNK_SIZE '-1'"),
        ({"COMM_TYPE": "io://"}, "AIS_ETL_IO_COMMAND must be set"),
    ],
)
def test_bad_environment_exits(runtime: RuntimeFactory, env: dict[str, str], expected: str) -> None:
    server = runtime.spawn("def transform(data):\n    return data\n", wait=False, **env)
    assert server.wait_exit() == EXIT_CONFIG
    assert expected in server.log


def test_io_nonzero_exit_is_500_with_stderr_tail(runtime: RuntimeFactory) -> None:
    import json
    import sys
    from urllib.parse import urlencode

    code = """
    import sys
    sys.stdin.buffer.read()
    print("partial output")
    print("something went wrong: disk on fire", file=sys.stderr)
    sys.exit(7)
    """
    command = [sys.executable, str(runtime.next_code_file)]
    server = runtime.spawn(code, COMM_TYPE="io://", AIS_ETL_IO_COMMAND=json.dumps(command))
    query = urlencode([("command", "bash"), ("command", "-c"), ("command", " ".join(command))])
    status, body, _ = server.request("PUT", "/b/o?" + query, body=b"data")
    assert status == 500
    assert b"exited with code 7" in body
    assert b"disk on fire" in body
    assert b"partial output" not in body


def _raw_exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def test_protocol_errors_and_keep_alive(runtime: RuntimeFactory) -> None:
    server = runtime.spawn("def transform(data):\n    return data[::-1]\n")
    assert _raw_exchange(server.port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert _raw_exchange(server.port, b"PUT / HTTP/2.0\r\n\r\n").startswith(b"HTTP/1.1 505 ")
    assert _raw_exchange(server.port, b"PUT / HTTP/1.1\r\nBad Header\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    huge = b"PUT / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n"
    assert _raw_exchange(server.port, huge).startswith(b"HTTP/1.1 431 ")
    assert _raw_exchange(server.port, b"DELETE /b/o HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 405 ")
    # Pipelined keep-alive requests, one with a body the server must consume (405) before the next.
    out = _raw_exchange(
        server.port,
        b"POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        b"PUT /b/o HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"
        b"PUT /b/o HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;ext=1\r\nc\r\n0\r\n\r\n"
        b"PUT /b/o HTTP/1.0\r\nContent-Length: 2\r\n\r\n12",
    )
    assert out.count(b"HTTP/1.1 ") == 4
    assert b"405 Method Not Allowed" in out
    assert b"\r\n\r\nzyx" in out
    assert b"\r\n\r\ncba" in out
    assert out.endswith(b"Connection: close\r\n\r\n21")
    # HEAD is not served, and its 405 carries no body; HTTP/1.0 keep-alive is announced.
    out = _raw_exchange(
        server.port,
        b"HEAD /b/o HTTP/1.1\r\n\r\nPUT /b/o HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
    )
    head_reply, _, put_reply = out.partition(b"\r\n\r\n")
    assert head_reply.startswith(b"HTTP/1.1 405 ")
    assert put_reply.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: keep-alive" in put_reply
    assert put_reply.endswith(b"\r\n\r\nko")


def test_expect_continue(runtime: RuntimeFactory) -> None:
    server = runtime.spawn("def transform(data):\n    return data\n")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"PUT /b/o HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"data")
        reply = sock.recv(1000)
    assert reply.startswith(b"HTTP/1.1 200 OK")
    assert reply.endswith(b"\r\n\r\ndata")
