"""The chunked decoder: framing, extensions, trailers, limits, and pieces split anywhere."""

from __future__ import annotations

import pytest

from airflow_ais_etl.runtime.http1 import MAX_LINE_BYTES, ChunkedDecoder, ParseError

BODY = b"5\r\nhello\r\n6;name=value;flag\r\n world\r\n0\r\n\r\n"


def decode(*pieces: bytes) -> tuple[bytes, ChunkedDecoder]:
    decoder = ChunkedDecoder()
    out = b"".join(part for piece in pieces for part in decoder.decode(piece))
    return out, decoder


def test_decodes_and_keeps_what_follows() -> None:
    out, decoder = decode(BODY + b"GET / HTTP/1.1\r\n")
    assert out == b"hello world"
    assert decoder.done
    assert decoder.rest == b"GET / HTTP/1.1\r\n"
    assert decoder.decode(b"more") == []
    assert decoder.rest == b"GET / HTTP/1.1\r\nmore"


def test_every_split_point_gives_the_same_body() -> None:
    message = BODY + b"next"
    for split in range(len(message) + 1):
        out, decoder = decode(message[:split], message[split:])
        assert (out, decoder.done, decoder.rest) == (b"hello world", True, b"next"), split
    out, decoder = decode(*(message[i : i + 1] for i in range(len(message))))
    assert (out, decoder.rest) == (b"hello world", b"next")


def test_no_empty_pieces_come_out() -> None:
    decoder = ChunkedDecoder()
    assert decoder.decode(b"3\r\n") == []
    assert decoder.decode(b"abc") == [b"abc"]
    assert decoder.decode(b"\r") == []
    assert not decoder.done


@pytest.mark.parametrize(
    "size_line",
    [
        b"a",
        b"A",
        b"000000000000000000000a",  # leading zeros do not count against the digit limit
        b"a;x",
        b"a ;x",
        b"a; x = y",
        b'a;x="quoted ; \\" string"',
        b'a;x=1;y;z=""',
    ],
)
def test_chunk_size_lines_accepted(size_line: bytes) -> None:
    out, decoder = decode(size_line + b"\r\n0123456789\r\n0\r\n\r\n")
    assert (out, decoder.done) == (b"0123456789", True)


@pytest.mark.parametrize(
    "size_line",
    [
        b"",
        b"zz",
        b"-5",
        b"+5",
        b"0x5",
        b" 5",
        b"5 ",
        b"5;",
        b"5; =x",
        b"5;x=",
        b'5;x="open',
        b"5;x=a b",
        b"5\x00",
        b"1" + b"0" * 16,  # 2**64: more than 16 significant hex digits
    ],
)
def test_malformed_chunk_sizes(size_line: bytes) -> None:
    with pytest.raises(ParseError, match="malformed chunk size"):
        decode(size_line + b"\r\nhello\r\n0\r\n\r\n")


def test_largest_chunk_size_is_accepted() -> None:
    decoder = ChunkedDecoder()
    assert decoder.decode(b"ffffffffffffffff\r\nabc") == [b"abc"]


def test_trailers_are_checked_and_dropped() -> None:
    out, decoder = decode(b"2\r\nok\r\n0\r\nChecksum: abc\r\nX-Other:\t1\r\n\r\nrest")
    assert (out, decoder.done, decoder.rest) == (b"ok", True, b"rest")


@pytest.mark.parametrize(
    ("trailer", "match"),
    [
        (b"no colon", "malformed trailer"),
        (b"Bad Name: x", "malformed trailer"),
        (b" folded", "obs-fold"),
        (b"A: b\x01", "malformed trailer"),
    ],
)
def test_malformed_trailers(trailer: bytes, match: str) -> None:
    with pytest.raises(ParseError, match=match):
        decode(b"0\r\n" + trailer + b"\r\n\r\n")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"5\r\nhelloXY0\r\n\r\n", "no CRLF after the data"),
        (b"5\r\nhello\rX", "no CRLF after the data"),
        (b"5\r\nhello\n0\r\n\r\n", "no CRLF after the data"),
        (b"5\nhello\r\n0\r\n\r\n", "bare LF"),
        (b"5\r\nhello\r\n0\n\n", "bare LF"),
        (b"5\r\r\nhello\r\n0\r\n\r\n", "malformed chunk size"),
        (b"0\r\nA: b\n\r\n", "bare LF"),
    ],
)
def test_line_endings_must_be_crlf(body: bytes, match: str) -> None:
    with pytest.raises(ParseError, match=match):
        decode(body)


def test_lines_are_limited_even_before_they_end() -> None:
    with pytest.raises(ParseError, match="longer than"):
        decode(b"5;x=" + b"a" * MAX_LINE_BYTES)
    with pytest.raises(ParseError, match="longer than"):
        decode(b"5;x=" + b"a" * MAX_LINE_BYTES + b"\r\n")
    pieces = [b"5;x=", *[b"a" * 1000] * 9]
    with pytest.raises(ParseError, match="longer than"):
        decode(*pieces)


def test_trailer_section_is_limited() -> None:
    trailers = b"A: b\r\n" * 200
    with pytest.raises(ParseError, match="trailer section too large") as info:
        decode(b"0\r\n" + trailers + b"\r\n")
    assert info.value.status == 431
