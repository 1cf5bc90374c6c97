"""The AIS 2.x request parts the runtime reads, checked against AIS's own Python helpers."""

from __future__ import annotations

import io
import os
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pytest
from aistore.sdk.etl.webserver.utils import compose_etl_direct_put_url
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_ais_etl.cluster.directput import PutTarget, grant, granted, puts_store, read_body, revoke
from airflow_ais_etl.runtime.aisproto import (
    accepts_context,
    compose_direct_put_url,
    etl_args_of,
    fqn_of_query,
    node_url_of,
    object_path,
    unquote_path,
)

if TYPE_CHECKING:
    from pathlib import Path

TARGET = "http://127.0.0.1:5000/v1/etl/_object/SeCrEtabcd"


@pytest.mark.parametrize(
    ("node_url", "obj", "args"),
    [
        ("http://127.0.0.1:5001/ais%2F%40%23%2Fb-1%2Fdir%2Fa%20b.bin?uuid=tok", "b-1/dir/a b.bin", ""),
        ("http://127.0.0.1:5001/ais%2F%40%23%2Fb-1%2Fx?uuid=tok&etl_args=old", "b-1/x", "new args&=?"),
        ("http://10.0.0.7:8000", "bck/dir/o@1 2.txt", "k=v"),
    ],
)
def test_direct_put_url_is_composed_as_ais_servers_do(node_url: str, obj: str, args: str) -> None:
    assert compose_direct_put_url(node_url, TARGET, obj, args) == compose_etl_direct_put_url(
        node_url, TARGET, obj, args
    )


def test_request_parts() -> None:
    # AIS sends url.PathEscape(FQN) query-encoded; the server unescapes twice and normalizes
    assert fqn_of_query("etl_fqn=%252Fdisk%252Fb%252F%2525ob%252Fa%2520b&etl_args=x") == "/disk/b/%ob/a b"
    assert fqn_of_query("etl_fqn=..%252F..%252Fetc%252Fpasswd") == "/etc/passwd"
    assert fqn_of_query("etl_args=x") is None
    assert etl_args_of("etl_args=+a%3D1+b+&etl_fqn=x") == "a=1 b"
    assert etl_args_of("") == ""
    assert object_path("/ais%2F%40%23%2Fb%2Fo%20x") == "ais/@#/b/o x"
    assert node_url_of({"ais-node-url": " http://a/x , http://b "}) == ("http://a/x", "http://b")
    assert node_url_of({}) == ("", "")


def test_calling_convention() -> None:
    def one(data: bytes) -> bytes:
        return data

    def three(data: bytes, path: str, etl_args: str) -> bytes:
        return data

    def star(data: bytes, *rest: str) -> bytes:
        return data

    assert not accepts_context(one, 1)
    assert accepts_context(three, 1)
    assert accepts_context(star, 1)
    assert not accepts_context(three, 2)


def _body(rfile: io.BytesIO, headers: dict[str, str]) -> bytes:
    return b"".join(bytes(piece) for piece in read_body(rfile, headers))  # each piece before the next


def test_body_framing() -> None:
    assert _body(io.BytesIO(b"abcdefXX"), {"Content-Length": "6"}) == b"abcdef"
    chunked = io.BytesIO(b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n")
    assert _body(chunked, {"Transfer-Encoding": "chunked"}) == b"abcde"
    with pytest.raises(EOFError):
        _body(io.BytesIO(b"abc"), {"Content-Length": "6"})
    with pytest.raises(EOFError):
        _body(io.BytesIO(b"5\r\nab"), {"Transfer-Encoding": "chunked"})
    with pytest.raises(ValueError, match="Content-Length"):
        _body(io.BytesIO(b""), {})


def test_a_large_body_comes_in_pieces_of_one_reused_buffer() -> None:
    data = os.urandom(3 * (1 << 20) + 5)
    pieces = read_body(io.BytesIO(data), {"Content-Length": str(len(data))})
    first = next(pieces)
    buffer = first.obj
    got = bytes(first)
    for piece in pieces:
        assert piece.obj is buffer  # no new object per piece
        got += bytes(piece)
    assert got == data
    assert len(next(read_body(io.BytesIO(b"abc"), {"Content-Length": "3"})).obj) == 3  # no 1 MiB for 3 bytes
    chunked = b"3\r\nabc\r\n" + f"{1 << 20:x}\r\n".encode() + data[: 1 << 20] + b"\r\n0\r\n\r\n"
    pieces = [bytes(piece) for piece in read_body(io.BytesIO(chunked), {"Transfer-Encoding": "chunked"})]
    assert b"".join(pieces) == b"abc" + data[: 1 << 20]
    assert len(pieces) <= 1 + 16  # a small first chunk: later pieces still 64 KiB or more


def test_grants_cover_one_bucket_until_revoked(tmp_path: Path) -> None:
    store = puts_store(str(tmp_path / "grants"))
    token = grant(store, "b-dst", "/data/dst")
    assert granted(store, f"uuid={token}", "b-dst") == PutTarget("/data/dst", None)
    with_umask = grant(store, "b-dst", "/data/dst", 0o027)  # what the gateway creates gets the job's modes
    assert granted(store, f"uuid={with_umask}", "b-dst") == PutTarget("/data/dst", 0o027)
    assert granted(store, f"uuid={token}", "b-src") is None
    assert granted(store, "uuid=forged", "b-dst") is None
    assert granted(store, "", "b-dst") is None
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "grants").iterdir()} == {0o600}
    assert (tmp_path / "grants").stat().st_mode & 0o777 == 0o700
    revoke(store, token)
    assert granted(store, f"uuid={token}", "b-dst") is None


_ESCAPED = st.lists(
    st.sampled_from(
        ["%2F", "%2f", "%23", "%40", "%C3", "%A9", "%E6", "%97", "%", "%2", "/", "@", "a", "Z", "9", "é", " "]
    ),
    max_size=20,
).map("".join)


@settings(max_examples=3000, deadline=None)
@given(_ESCAPED)
def test_unquote_path_decodes_as_unquote_does(path: str) -> None:
    """Decoding before and after the last ``%2F`` apart is decoding the whole (broken UTF-8 and stray ``%`` too)."""
    assert unquote_path(path) == unquote(path)
    assert unquote_path("/ais%2F@%23%2Fb%2F" + path) == unquote("/ais%2F@%23%2Fb%2F" + path)
