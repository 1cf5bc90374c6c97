"""Request and response heads: where they end, what they say, and every malformed form refused."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from airflow_ais_etl.runtime import http1
from airflow_ais_etl.runtime.http1 import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    MAX_LINE_BYTES,
    ParseError,
    find_head_end,
    parse_request_head,
    parse_response_head,
)

GET = b"GET /a/b?c=d HTTP/1.1\r\nHost: x\r\nX-Multi: one\r\nx-multi:two\r\n\r\n"


def test_request_head_fields() -> None:
    head = parse_request_head(GET)
    assert (head.method, head.target, head.version, head.keep_alive) == ("GET", "/a/b?c=d", "HTTP/1.1", True)
    assert head.headers == {"host": "x", "x-multi": "one, two"}


def test_values_lose_surrounding_whitespace_and_keep_obs_text() -> None:
    head = parse_request_head(b"PUT / HTTP/1.1\r\nA: \t spaced  value \t\r\nB:\r\nC: caf\xe9\r\n\r\n")
    assert head.headers == {"a": "spaced  value", "b": "", "c": "café"}


@pytest.mark.parametrize(
    ("version", "connection", "keep"),
    [
        (b"1.1", None, True),
        (b"1.1", b"close", False),
        (b"1.1", b"Upgrade, Close", False),
        (b"1.1", b"closed-captions", True),  # an option token, not a substring
        (b"1.0", None, False),
        (b"1.0", b"keep-alive", True),
        (b"1.0", b"Keep-Alive, foo", True),
    ],
)
def test_keep_alive_follows_version_and_connection_options(
    version: bytes, connection: bytes | None, keep: bool
) -> None:
    field = b"" if connection is None else b"Connection: " + connection + b"\r\n"
    assert parse_request_head(b"GET / HTTP/" + version + b"\r\n" + field + b"\r\n").keep_alive is keep
    status_line = b"HTTP/" + version + b" 200 OK\r\n"
    assert parse_response_head(status_line + field + b"\r\n").keep_alive is keep


@pytest.mark.parametrize(
    ("head", "status", "match"),
    [
        (b"GARBAGE\r\n\r\n", 400, "malformed request line"),
        (b"\r\n\r\n", 400, "malformed request line"),
        (b"GET /a b HTTP/1.1\r\n\r\n", 400, "malformed request line"),
        (b"GET  / HTTP/1.1\r\n\r\n", 400, "malformed request line"),
        (b"G(T / HTTP/1.1\r\n\r\n", 400, "malformed request line"),
        (b"GET / FTP/1.1\r\n\r\n", 400, "malformed request line"),
        (b"GET / HTTP/1.1 \r\n\r\n", 400, "malformed request line"),
        (b"GET / HTTP/2.0\r\n\r\n", 505, "HTTP/2.0 is not supported"),
        (b"GET / HTTP/1.2\r\n\r\n", 505, "not supported"),
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400, "no colon"),
        (b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400, "obs-fold"),
        (b"GET / HTTP/1.1\r\n\tfolded: x\r\n\r\n", 400, "obs-fold"),
        (b"GET / HTTP/1.1\r\nA : b\r\n\r\n", 400, "whitespace before the colon"),
        (b"GET / HTTP/1.1\r\nA\t: b\r\n\r\n", 400, "whitespace before the colon"),
        (b"GET / HTTP/1.1\r\n: b\r\n\r\n", 400, "malformed header field"),
        (b"GET / HTTP/1.1\r\nA(: b\r\n\r\n", 400, "malformed header field"),
        (b"GET / HTTP/1.1\r\nA: b\x00c\r\n\r\n", 400, "malformed header field"),
        (b"GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", 400, "malformed header field"),
        (b"GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n", 400, "bare LF"),
        (b"GET / HTTP/1.1\r\nA: b\rC: d\r\n\r\n", 400, "bare LF or CR"),
        (b"GET / HTTP/1.1\nA: b\r\n\r\n", 400, "bare LF"),
        (b"GET / HTTP/1.1\r\nA: b\r\n", 400, "incomplete head"),
        (b"GET /" + b"a" * MAX_LINE_BYTES + b" HTTP/1.1\r\n\r\n", 414, "longer than"),
        (b"GET / HTTP/1.1\r\nA: " + b"a" * MAX_LINE_BYTES + b"\r\n\r\n", 431, "longer than"),
        (b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * (MAX_HEADERS + 1) + b"\r\n", 431, "more than"),
    ],
)
def test_malformed_request_heads(head: bytes, status: int, match: str) -> None:
    with pytest.raises(ParseError, match=match) as info:
        parse_request_head(head)
    assert info.value.status == status


def test_limits_are_inclusive() -> None:
    fields = b"A: b\r\n" * MAX_HEADERS
    assert len(parse_request_head(b"GET / HTTP/1.1\r\n" + fields + b"\r\n").headers) == 1
    value = b"v" * MAX_LINE_BYTES
    assert parse_request_head(b"GET / HTTP/1.1\r\nA:" + value + b"\r\n\r\n").headers["a"] == value.decode()
    target = b"/" + b"t" * (MAX_LINE_BYTES - 1)
    assert parse_request_head(b"GET " + target + b" HTTP/1.1\r\n\r\n").target == target.decode()


def test_methods_are_tokens_and_targets_are_kept_verbatim() -> None:
    head = parse_request_head(b"M-SEARCH * HTTP/1.0\r\n\r\n")
    assert (head.method, head.target, head.keep_alive) == ("M-SEARCH", "*", False)
    assert parse_request_head(b"get http://h/%20?\xff HTTP/1.1\r\n\r\n").target == "http://h/%20?\xff"


def test_response_heads() -> None:
    head = parse_response_head(b"HTTP/1.1 404 Not  Found\r\nContent-Length: 3\r\n\r\n")
    assert (head.version, head.status, head.reason) == ("HTTP/1.1", 404, "Not  Found")
    assert head.headers == {"content-length": "3"}
    assert parse_response_head(b"HTTP/1.1 200\r\n\r\n").reason == ""
    assert parse_response_head(b"HTTP/1.1 200 \r\n\r\n").reason == ""
    assert parse_response_head(b"HTTP/1.0 103 Early Hints\r\n\r\n").version == "HTTP/1.0"


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.1 099 Too Low\r\n\r\n",
        b"HTTP/1.1 1000 Too Long\r\n\r\n",
        b"HTTP/1.1 20 Short\r\n\r\n",
        b"HTTP/1.1  200 OK\r\n\r\n",
        b"http/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\x00\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
        b"HTTP/1.1 200 OK\nA: b\n\n",
    ],
)
def test_malformed_response_heads(head: bytes) -> None:
    with pytest.raises(ParseError):
        parse_response_head(head)


def test_find_head_end_resumes_where_it_stopped() -> None:
    message = GET + b"body"
    for split in range(len(message) + 1):
        buf = bytearray(message[:split])
        end = find_head_end(buf)
        if end < 0:
            searched = len(buf)
            buf += message[split:]
            end = find_head_end(buf, searched)
        assert end == len(GET)


def test_find_head_end_limits() -> None:
    assert find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n") == -1
    assert find_head_end(b"") == -1
    too_long = b"GET / HTTP/1.1\r\nA: " + b"a" * MAX_HEAD_BYTES
    with pytest.raises(ParseError) as info:
        find_head_end(too_long)
    assert info.value.status == 431
    with pytest.raises(ParseError) as info:
        find_head_end(too_long + b"\r\n\r\n")
    assert info.value.status == 431


@pytest.mark.parametrize("head", [b"GET / HTTP/1.1\nHost: x\n\n", b"GET / HTTP/1.1\r\nHost: x\r\n\n"])
def test_lf_only_heads_are_refused_as_soon_as_they_end(head: bytes) -> None:
    with pytest.raises(ParseError, match="bare LF"):
        find_head_end(head)
    assert find_head_end(head[:-1]) == -1  # not over yet: no verdict


def test_parser_imports_only_the_standard_library() -> None:
    """The package ships in the runtime image, which holds nothing but Python and the runtime."""
    package = Path(http1.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                ours = name.startswith("airflow_ais_etl.runtime.")
                assert ours or top in sys.stdlib_module_names or top == "__future__", f"{path.name}: {name}"
