"""Properties of the parser over generated messages (bounded example counts: part of the default run)."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_ais_etl.runtime.http1 import (
    CRLF,
    END,
    LAST_CHUNK,
    ChunkedDecoder,
    ParseError,
    ResponseHead,
    ResponseParser,
    chunk_size_line,
    find_head_end,
    parse_request_head,
    parse_response_head,
)

PROPERTY = settings(max_examples=200, deadline=None, database=None)
TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
VALUE_CHARS = "".join(chr(c) for c in [*range(0x20, 0x7F), 0x09, *range(0x80, 0x100)])
FRAMING_FIELDS = {"content-length", "transfer-encoding", "connection"}

tokens = st.text(TCHARS, min_size=1, max_size=10)
values = st.text(VALUE_CHARS, max_size=24).map(lambda v: v.strip(" \t"))
fields = st.lists(st.tuples(tokens.filter(lambda n: n.lower() not in FRAMING_FIELDS), values), max_size=8)
extensions = st.lists(st.tuples(tokens, st.one_of(st.none(), tokens)), max_size=3).map(
    lambda pairs: b"".join(b";" + n.encode() + (b"" if v is None else b"=" + v.encode()) for n, v in pairs)
)


def expected_headers(pairs: list[tuple[str, str]], extra: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    out.update(extra)
    return out


def field_lines(pairs: list[tuple[str, str]]) -> bytes:
    return b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in pairs)


@st.composite
def chunked_bodies(draw: Any, body: bytes) -> bytes:
    """``body`` in chunked coding: random chunk sizes, extensions and trailer fields."""
    out = []
    pos = 0
    while pos < len(body):
        size = draw(st.integers(1, len(body) - pos))
        out += [chunk_size_line(size)[:-2], draw(extensions), CRLF, body[pos : pos + size], CRLF]
        pos += size
    trailers = draw(fields)
    if trailers:
        out += [b"0", draw(extensions), CRLF, field_lines(trailers), CRLF]
    else:
        out.append(LAST_CHUNK)
    return b"".join(out)


@st.composite
def responses(draw: Any) -> tuple[bytes, ResponseHead, bytes]:
    """A serialised answer, the head it should parse to, and its body."""
    status = draw(st.integers(200, 599).filter(lambda s: s not in (204, 304)))
    reason = draw(values)
    pairs = draw(fields)
    body = draw(st.binary(max_size=200))
    raw = f"HTTP/1.1 {status} {reason}\r\n".encode("latin-1") + field_lines(pairs)
    if draw(st.booleans()):
        extra = {"transfer-encoding": "chunked"}
        raw += b"Transfer-Encoding: chunked\r\n\r\n" + draw(chunked_bodies(body))
    else:
        extra = {"content-length": str(len(body))}
        raw += b"Content-Length: %d\r\n\r\n" % len(body) + body
    head = ResponseHead("HTTP/1.1", status, reason, expected_headers(pairs, extra), True)
    return raw, head, body


def splits(data: Any, raw: bytes) -> list[bytes]:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    edges = [0, *cuts, len(raw)]
    return [raw[a:b] for a, b in zip(edges, edges[1:], strict=False)]


def parse_answer(pieces: list[bytes]) -> tuple[ResponseHead | None, bytes, bool, int]:
    """Feed ``pieces``; return the head, the body, whether the answer ended, and the leftover bytes."""
    parser = ResponseParser()
    parser.expect(False)
    head = None
    body = []
    ended = False
    for piece in pieces:
        parser.feed(piece)
        while not ended and (event := parser.next_event()) is not None:
            if event is END:
                ended = True
            elif isinstance(event, bytes):
                body.append(event)
            else:
                assert isinstance(event, ResponseHead)
                head = event
    return head, b"".join(body), ended, parser.leftover


@PROPERTY
@given(responses(), st.data())
def test_any_answer_parses_the_same_however_it_is_split(answer: Any, data: Any) -> None:
    raw, head, body = answer
    assert parse_answer([raw]) == (head, body, True, 0)
    assert parse_answer(splits(data, raw + b"NEXT")) == (head, body, True, 4)


@PROPERTY
@given(
    st.lists(st.binary(min_size=1, max_size=64), max_size=8),
    extensions,
    fields,
    st.binary(max_size=16),
    st.data(),
)
def test_chunked_encode_decode_roundtrip(
    pieces: list[bytes], extension: bytes, trailers: list[tuple[str, str]], after: bytes, data: Any
) -> None:
    encoded = b"".join(chunk_size_line(len(p))[:-2] + extension + CRLF + p + CRLF for p in pieces)
    encoded += b"0" + extension + CRLF + field_lines(trailers) + CRLF
    decoder = ChunkedDecoder()
    out = [part for piece in splits(data, encoded + after) for part in decoder.decode(piece)]
    assert all(out)
    assert b"".join(out) == b"".join(pieces)
    assert decoder.done
    assert decoder.rest == after


def mutate(data: Any, raw: bytes) -> bytes:
    """``raw`` with a few bytes replaced, inserted or deleted: malformed in ways that reach deep states."""
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(out)))
        kind = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = data.draw(st.sampled_from([0, 9, 10, 13, 32, 34, 44, 48, 58, 59, 65, 127, 255]))
        if kind == "insert" or pos == len(out):
            out[pos:pos] = bytes([byte])
        elif kind == "replace":
            out[pos] = byte
        else:
            del out[pos]
    return bytes(out)


@PROPERTY
@given(st.one_of(st.binary(max_size=300), responses().map(lambda a: a[0])), st.booleans(), st.data())
def test_any_bytes_raise_nothing_but_parse_error(raw: bytes, mutated: bool, data: Any) -> None:
    if mutated:
        raw = mutate(data, raw)
    pieces = splits(data, raw)
    with contextlib.suppress(ParseError):
        parse_answer(pieces)
    decoder = ChunkedDecoder()
    with contextlib.suppress(ParseError):
        for piece in pieces:
            decoder.decode(piece)
    for parse in (parse_request_head, parse_response_head, find_head_end):
        with contextlib.suppress(ParseError):
            parse(raw)
