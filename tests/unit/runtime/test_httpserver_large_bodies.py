"""Large ``Content-Length`` bodies read whole: byte-exact however they arrive, and a cut one is an error."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from airflow_ais_etl.runtime.httpserver import ClientGone, Connection
from tests.unit.runtime.test_httpserver_reads import ScriptedSocket

BODY = os.urandom((3 << 20) + 7)
HEAD = b"PUT /b/big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(BODY)


def read_whole(sock: object) -> bytes:
    conn = Connection(sock)  # type: ignore[arg-type]
    conn.buf += conn.recv_some()
    req = conn.read_request()
    data = req.body.read_all()
    assert req.body.done
    assert conn.buf == b""
    return data


@pytest.mark.parametrize("split", [len(HEAD), len(HEAD) + 1, len(HEAD) + 70_000, len(HEAD) + 5])
def test_a_large_body_reads_whole_after_any_first_read(split: int) -> None:
    raw = HEAD + BODY
    assert read_whole(ScriptedSocket([raw[:split], raw[split:]])) == BODY


def test_a_large_body_arriving_in_small_pieces_reads_whole() -> None:
    raw = HEAD + BODY
    pieces = [raw[i : i + 100_003] for i in range(0, len(raw), 100_003)]
    assert read_whole(ScriptedSocket(pieces)) == BODY


def test_a_large_body_cut_short_is_a_client_gone() -> None:
    raw = HEAD + BODY[:-1]
    with pytest.raises(ClientGone, match="middle of the request body"):
        read_whole(ScriptedSocket([raw[: len(HEAD)], raw[len(HEAD) :]]))


def test_a_large_body_over_a_real_socket_is_byte_exact() -> None:
    server, client = socket.socketpair()
    sender = threading.Thread(target=lambda: (client.sendall(HEAD + BODY), client.close()))
    sender.start()
    try:
        assert read_whole(server) == BODY
    finally:
        sender.join()
        server.close()
