"""The runtime server's request reading over a scripted socket: heads, bodies, pipelining, errors."""

from __future__ import annotations

import collections
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_ais_etl.runtime.httpserver import ClientGone, Connection, HttpError, Request

PIPELINE = (
    b"PUT /b/one HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    b"PUT /b/two?q=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n1\r\nd\r\n0\r\nT: x\r\n\r\n"
    b"GET /health HTTP/1.1\r\n\r\n"
    b"PUT /b/three HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n12"
)
EXPECTED = [
    ("PUT", "/b/one", "", True, b"hello"),
    ("PUT", "/b/two", "q=1", True, b"abcd"),
    ("GET", "/health", "", True, b""),
    ("PUT", "/b/three", "", True, b"12"),
]


class ScriptedSocket:
    """Hands out ``pieces`` one per receive call (never more than asked), then end of stream."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = collections.deque(piece for piece in pieces if piece)
        self.sent: list[bytes] = []

    def recv(self, size: int, flags: int = 0) -> bytes:
        if not self.pieces:
            return b""
        piece = self.pieces.popleft()
        if len(piece) > size:
            self.pieces.appendleft(piece[size:])
            piece = piece[:size]
        return piece

    def recv_into(self, view: Any, size: int = 0) -> int:
        data = self.recv(min(size or len(view), len(view)))
        view[: len(data)] = data
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    def close(self) -> None:
        pass


def serve(pieces: list[bytes], read_size: int = -1) -> list[tuple[str, str, str, bool, bytes]]:
    """Read every request on the connection as the server does; return what each one said."""
    conn = Connection(ScriptedSocket(pieces))  # type: ignore[arg-type]
    seen = []
    while True:
        while conn.buf[:2] == b"\r\n":
            del conn.buf[:2]
        if not conn.buf:
            try:
                conn.buf += conn.recv_some()
            except ClientGone:
                return seen
            continue
        req = conn.read_request()
        seen.append((req.method, req.path, req.query, req.keep_alive, read_body(req, read_size)))


def read_body(req: Request, size: int) -> bytes:
    if size < 0:
        return req.body.read_all()
    parts = []
    while part := req.body.read(size):
        assert len(part) <= size
        parts.append(part)
    assert req.body.done
    return b"".join(parts)


def test_pipelined_requests_in_one_piece() -> None:
    assert serve([PIPELINE]) == EXPECTED


def test_pipelined_requests_split_at_every_byte() -> None:
    for split in range(len(PIPELINE) + 1):
        assert serve([PIPELINE[:split], PIPELINE[split:]]) == EXPECTED, split
    assert serve([PIPELINE[i : i + 1] for i in range(len(PIPELINE))]) == EXPECTED


@pytest.mark.parametrize("read_size", [1, 2, 3, 1000])
def test_bodies_read_in_small_steps(read_size: int) -> None:
    assert serve([PIPELINE], read_size) == EXPECTED


def test_empty_lines_between_requests_are_tolerated() -> None:
    assert serve([b"\r\n" + PIPELINE.replace(b"GET /health", b"\r\n\r\nGET /health")]) == EXPECTED


def test_draining_an_unread_chunked_body_keeps_the_next_request() -> None:
    conn = Connection(ScriptedSocket([PIPELINE]))  # type: ignore[arg-type]
    conn.buf += conn.recv_some()
    for _ in range(2):
        assert conn.read_request().body.drain()
    assert conn.read_request().path == "/health"


def test_expect_continue_is_answered_on_the_first_read() -> None:
    sock = ScriptedSocket(
        [b"PUT /b/o HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n", b"data"]
    )
    conn = Connection(sock)  # type: ignore[arg-type]
    req = conn.read_request()
    assert sock.sent == []
    assert req.body.read_all() == b"data"
    assert sock.sent == [b"HTTP/1.1 100 Continue\r\n\r\n"]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"PUT / HTTP/1.1\nHost: x\n\n", 400),
        (b"PUT / HTTP/1.1\r\nHost: x\r\n\n", 400),
        (b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
        (b"PUT / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
        (b"PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"PUT / HTTP/1.1\r\n folded: x\r\n\r\n", 400),
        (b"PUT http://h/ HTTP/1.1\r\n\r\n", 400),
        (b"PUT / HTTP/3.0\r\n\r\n", 505),
        (b"PUT / HTTP/1.1\r\nX: " + b"a" * 70_000, 431),
        (b"PUT / HTTP/1.1\r\nHost: x", 400),  # the client left in the middle of the head
    ],
)
def test_malformed_requests(raw: bytes, status: int) -> None:
    conn = Connection(ScriptedSocket([raw]))  # type: ignore[arg-type]
    with pytest.raises(HttpError) as info:
        conn.read_request()
    assert info.value.status == status


@pytest.mark.parametrize(
    "body", [b"zz\r\n", b"3\r\nabcXY", b"3\nabc\r\n0\r\n\r\n", b"3\r\nabc\r\n0\r\nbad trailer\r\n\r\n"]
)
def test_malformed_chunked_bodies(body: bytes) -> None:
    raw = b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    req = Connection(ScriptedSocket([raw])).read_request()  # type: ignore[arg-type]
    with pytest.raises(HttpError) as info:
        req.body.read_all()
    assert info.value.status == 400
    assert not req.body.drain()


def test_cut_chunked_body_is_a_client_gone() -> None:
    raw = b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"
    req = Connection(ScriptedSocket([raw])).read_request()  # type: ignore[arg-type]
    with pytest.raises(ClientGone):
        req.body.read_all()


@pytest.mark.parametrize(
    ("buffered", "ready"),
    [
        (b"", False),
        (b"PUT / HTTP/1.1\r\nHost: x\r\n", False),
        (b"PUT / HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"PUT / HTTP/1.1\nHost: x\n\n", True),  # malformed: read_request answers it at once
        (b"PUT / HTTP/1.1\r\nX: " + b"a" * 70_000, True),
    ],
)
def test_head_buffered(buffered: bytes, ready: bool) -> None:
    conn = Connection(ScriptedSocket([]))  # type: ignore[arg-type]
    conn.buf += buffered
    assert conn.head_buffered() is ready


TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VALUE_CHARS = "".join(chr(c) for c in [*range(0x20, 0x7F), 0x09, *range(0x80, 0x100)])
PATH_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "?#")
FRAMING_FIELDS = {"content-length", "transfer-encoding", "connection", "expect"}
tokens = st.text(TCHARS, min_size=1, max_size=10)
fields = st.lists(
    st.tuples(
        tokens.filter(lambda n: n.lower() not in FRAMING_FIELDS),
        st.text(VALUE_CHARS, max_size=20).map(lambda v: v.strip(" \t")),
    ),
    max_size=6,
)


@st.composite
def requests(draw: Any) -> tuple[bytes, tuple[str, str, str, bool, bytes], dict[str, str]]:
    """A serialised request, what the server should read from it, and its header fields."""
    method = draw(tokens)
    path = "/" + draw(st.text(PATH_CHARS, max_size=12))
    query = draw(st.text(PATH_CHARS + "?", max_size=8))
    target = f"{path}?{query}" if query else path
    pairs = draw(fields)
    body = draw(st.binary(max_size=100))
    raw = f"{method} {target} HTTP/1.1\r\n".encode() + b"".join(
        f"{n}: {v}\r\n".encode("latin-1") for n, v in pairs
    )
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if body and draw(st.booleans()):
        sizes = draw(st.lists(st.integers(1, len(body)), min_size=1, max_size=4))
        chunks, pos = [], 0
        for size in [*sizes, len(body)]:
            if pos < len(body):
                chunks.append(b"%x\r\n%s\r\n" % (len(body[pos : pos + size]), body[pos : pos + size]))
                pos += size
        raw += b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(chunks) + b"0\r\n\r\n"
        headers["transfer-encoding"] = "chunked"
    else:
        raw += b"Content-Length: %d\r\n\r\n" % len(body) + body
        headers["content-length"] = str(len(body))
    return raw, (method, path, query, True, body), headers


def pieces(data: Any, raw: bytes) -> list[bytes]:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    edges = [0, *cuts, len(raw)]
    return [raw[a:b] for a, b in zip(edges, edges[1:], strict=False)]


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(requests(), min_size=1, max_size=4), st.sampled_from([-1, 1, 7]), st.data())
def test_pipelined_requests_read_the_same_however_they_are_split(
    reqs: list[Any], read_size: int, data: Any
) -> None:
    raw = b"".join(r[0] for r in reqs)
    assert serve(pieces(data, raw), read_size) == [r[1] for r in reqs]
    conn = Connection(ScriptedSocket(pieces(data, raw)))  # type: ignore[arg-type]
    assert conn.read_request().headers == reqs[0][2]


@settings(max_examples=200, deadline=None, database=None)
@given(st.one_of(st.binary(max_size=300), requests().map(lambda r: r[0])), st.data())
def test_any_bytes_end_in_an_answerable_error_or_requests(raw: bytes, data: Any) -> None:
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(0, 4))):
        pos = data.draw(st.integers(0, len(mutated)))
        mutated[pos:pos] = bytes([data.draw(st.sampled_from([0, 10, 13, 32, 48, 58, 59, 255]))])
    status = None
    try:
        serve(pieces(data, bytes(mutated)))
    except HttpError as exc:
        status = exc.status
    except ClientGone:
        pass  # cut in the middle of a body
    assert status in (None, 400, 414, 431, 501, 505)
