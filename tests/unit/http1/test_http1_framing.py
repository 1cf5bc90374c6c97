"""Body framing: Content-Length, chunked or until close, and the ambiguous cases refused."""

from __future__ import annotations

import pytest

from airflow_ais_etl.runtime.http1 import (
    CHUNKED,
    UNTIL_CLOSE,
    ParseError,
    parse_request_head,
    parse_response_head,
    request_body_length,
    response_body_length,
)


def request(*fields: bytes) -> int:
    return request_body_length(parse_request_head(b"PUT / HTTP/1.1\r\n" + b"".join(fields) + b"\r\n"))


def response(status: bytes, *fields: bytes, to_head: bool = False) -> int:
    head = parse_response_head(b"HTTP/1.1 " + status + b" X\r\n" + b"".join(fields) + b"\r\n")
    return response_body_length(head, to_head)


def test_request_lengths() -> None:
    assert request() == 0
    assert request(b"Content-Length: 0\r\n") == 0
    assert request(b"Content-Length: 42\r\n") == 42
    assert request(b"Content-Length: 007\r\n") == 7
    assert request(b"Transfer-Encoding: chunked\r\n") == CHUNKED
    assert request(b"Transfer-Encoding: Chunked\r\n") == CHUNKED


def test_repeated_content_length_must_agree() -> None:
    assert request(b"Content-Length: 5\r\n", b"Content-Length: 5\r\n") == 5
    assert request(b"Content-Length: 5, 5\r\n") == 5
    with pytest.raises(ParseError, match="conflicting"):
        request(b"Content-Length: 5\r\n", b"Content-Length: 6\r\n")
    with pytest.raises(ParseError, match="conflicting"):
        request(b"Content-Length: 5,6\r\n")


@pytest.mark.parametrize(
    "value", [b"", b"-1", b"+5", b"5.0", b"0x10", b"5 5", b"1" * 19, "\xb2".encode("latin-1"), b"5,"]
)
def test_malformed_content_length(value: bytes) -> None:
    with pytest.raises(ParseError, match="Content-Length") as info:
        request(b"Content-Length: " + value + b"\r\n")
    assert info.value.status == 400


def test_transfer_encoding_with_content_length_is_refused_both_ways() -> None:
    both = (b"Transfer-Encoding: chunked\r\n", b"Content-Length: 5\r\n")
    with pytest.raises(ParseError, match="both") as info:
        request(*both)
    assert info.value.status == 400
    with pytest.raises(ParseError, match="both"):
        response(b"200", *both)


@pytest.mark.parametrize("coding", [b"gzip", b"gzip, chunked", b"chunked, chunked", b"identity"])
def test_codings_other_than_chunked(coding: bytes) -> None:
    with pytest.raises(ParseError, match="unsupported Transfer-Encoding") as info:
        request(b"Transfer-Encoding: " + coding + b"\r\n")
    assert info.value.status == 501
    with pytest.raises(ParseError, match="unsupported Transfer-Encoding"):
        response(b"200", b"Transfer-Encoding: " + coding + b"\r\n")


def test_response_lengths() -> None:
    assert response(b"200", b"Content-Length: 3\r\n") == 3
    assert response(b"200", b"Transfer-Encoding: chunked\r\n") == CHUNKED
    assert response(b"200") == UNTIL_CLOSE
    for status in (b"100", b"103", b"204", b"304"):
        assert response(status, b"Content-Length: 3\r\n") == 0
    assert response(b"200", b"Content-Length: 3\r\n", to_head=True) == 0
    assert response(b"200", b"Transfer-Encoding: chunked\r\n", to_head=True) == 0
