"""``ResponseParser.take_body``: body bytes a caller consumes itself are counted, never the body's end."""

from __future__ import annotations

from airflow_ais_etl.runtime.http1 import EndOfMessage, ResponseParser
from airflow_ais_etl.runtime.http1.responses import LENGTH


def parser_in_body(length: int, first: bytes = b"") -> ResponseParser:
    parser = ResponseParser()
    parser.expect(False)
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length + first)
    assert parser.next_event() is not None  # the head
    if first:
        assert parser.next_event() == first
    return parser


def test_bytes_in_the_middle_of_a_body_are_taken_and_the_end_is_parsed() -> None:
    parser = parser_in_body(10, b"ab")
    assert parser.take_body(5)
    assert parser.left == 3
    assert not parser.take_body(3)  # the last bytes are fed: the parser must see the end
    parser.feed(b"xyz")
    assert parser.next_event() == b"xyz"
    assert isinstance(parser.next_event(), EndOfMessage)


def test_nothing_is_taken_outside_a_length_body_or_with_bytes_buffered() -> None:
    head_only = ResponseParser()
    head_only.expect(False)
    assert not head_only.take_body(1)
    chunked = ResponseParser()
    chunked.expect(False)
    chunked.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert chunked.next_event() is not None
    assert not chunked.take_body(1)
    buffered = parser_in_body(10)
    buffered.feed(b"abc")  # fed but not yet parsed: new bytes would come after these
    assert buffered.state == LENGTH
    assert not buffered.take_body(2)
