"""The client's push parser: events for each answer on a keep-alive connection, fed in any pieces."""

from __future__ import annotations

import pytest

from airflow_ais_etl.runtime.http1 import END, ParseError, ResponseHead, ResponseParser
from airflow_ais_etl.runtime.http1.responses import CHUNKED_BODY, HEAD, IDLE, LENGTH, UNTIL_CLOSE

CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n"


def events(parser: ResponseParser, *pieces: bytes) -> list[object]:
    """Feed ``pieces`` and collect the events, body pieces joined; stop at the end of the answer."""
    out: list[object] = []
    for piece in pieces:
        parser.feed(piece)
        while (event := parser.next_event()) is not None:
            if isinstance(event, bytes) and out and isinstance(out[-1], bytes):
                out[-1] += event
            else:
                out.append(event)
            if event is END:
                return out
    return out


def answer(raw: bytes, *, to_head: bool = False) -> list[object]:
    parser = ResponseParser()
    parser.expect(to_head)
    return events(parser, raw)


def test_content_length_answer() -> None:
    got = answer(b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello")
    assert got == [
        ResponseHead("HTTP/1.1", 201, "Created", {"content-length": "5", "x-a": "b"}, True),
        b"hello",
        END,
    ]


def test_chunked_answer_with_extensions_and_trailers() -> None:
    head, body, end = answer(CHUNKED)
    assert isinstance(head, ResponseHead)
    assert (body, end) == (b"abcde", END)


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
        CHUNKED,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ],
)
def test_every_split_point_gives_the_same_events(raw: bytes) -> None:
    whole = answer(raw)
    for split in range(len(raw) + 1):
        parser = ResponseParser()
        parser.expect(False)
        assert events(parser, raw[:split], raw[split:]) == whole, split
    parser = ResponseParser()
    parser.expect(False)
    assert events(parser, *(raw[i : i + 1] for i in range(len(raw)))) == whole


def test_informational_answers_are_skipped() -> None:
    got = answer(b"HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert [e.status if isinstance(e, ResponseHead) else e for e in got] == [200, b"ok", END]


def test_switching_protocols_is_refused() -> None:
    with pytest.raises(ParseError, match="switched protocols"):
        answer(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")


@pytest.mark.parametrize(
    ("raw", "to_head"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", True),
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 100\r\n\r\n", False),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n", False),
    ],
)
def test_answers_without_a_body(raw: bytes, to_head: bool) -> None:
    head, end = answer(raw, to_head=to_head)
    assert isinstance(head, ResponseHead)
    assert end is END


def test_close_delimited_body_runs_until_the_caller_ends_it() -> None:
    parser = ResponseParser()
    parser.expect(False)
    got = events(parser, b"HTTP/1.0 200 OK\r\n\r\nall ", b"of it")
    assert got[1:] == [b"all of it"]
    assert parser.state == UNTIL_CLOSE
    assert isinstance(got[0], ResponseHead)
    assert not got[0].keep_alive


def test_back_to_back_answers_on_one_connection() -> None:
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none"
    parser = ResponseParser()
    parser.expect(False)
    assert events(parser, first + CHUNKED)[1:] == [b"one", END]
    assert parser.state == IDLE
    assert parser.leftover == len(CHUNKED)  # a client that did not ask for it must not reuse the connection
    parser.expect(False)
    assert parser.leftover == 0
    assert events(parser, CHUNKED)[1:] == [b"abcde", END]
    assert parser.leftover == 0


def test_states_and_bytes_left_for_cut_answers() -> None:
    parser = ResponseParser()
    assert parser.state == IDLE
    parser.expect(False)
    assert parser.state == HEAD
    events(parser, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123")
    assert (parser.state, parser.left) == (LENGTH, 6)
    parser.expect(False)
    events(parser, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
    assert parser.state == CHUNKED_BODY
    parser.reset()
    assert (parser.state, parser.leftover) == (IDLE, 0)


def test_head_is_delivered_before_a_body_error() -> None:
    parser = ResponseParser()
    parser.expect(False)
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    head = parser.next_event()
    assert isinstance(head, ResponseHead)
    assert head.status == 200
    with pytest.raises(ParseError, match="malformed chunk size"):
        parser.next_event()


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    ],
)
def test_malformed_heads(raw: bytes) -> None:
    with pytest.raises(ParseError):
        answer(raw)


def test_oversized_head_is_refused_before_it_ends() -> None:
    parser = ResponseParser()
    parser.expect(False)
    with pytest.raises(ParseError, match="head longer than"):
        events(parser, b"HTTP/1.1 200 OK\r\n", *[b"X: " + b"a" * 1000 + b"\r\n"] * 70)
