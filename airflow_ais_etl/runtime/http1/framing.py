"""How long a message body is: the framing rules of RFC 9112 §6.3, refusing every ambiguous case."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_ais_etl.runtime.http1.errors import ParseError

if TYPE_CHECKING:
    from airflow_ais_etl.runtime.http1.heads import RequestHead, ResponseHead

CHUNKED = -1
"""Body length of a chunked body: it ends with its last chunk."""
UNTIL_CLOSE = -2
"""Body length of a response without framing: it ends when the connection does."""
_MAX_DIGITS = 18  # below 2**63: no arbitrary-precision arithmetic on a peer's say-so


def request_body_length(head: RequestHead) -> int:
    """Return the body length of a request: bytes, or :data:`CHUNKED` (no header: 0).

    :raises ParseError: both ``Transfer-Encoding`` and ``Content-Length`` (a smuggling attempt, 400),
        a malformed or conflicting ``Content-Length`` (400), a coding other than chunked (501)
    """
    return _body_length(head.headers, 501)


def response_body_length(head: ResponseHead, to_head: bool) -> int:
    """Return the body length of a response: bytes, :data:`CHUNKED` or :data:`UNTIL_CLOSE`.

    :param to_head: the response answers a ``HEAD`` request (then it has no body)
    :raises ParseError: as :func:`request_body_length`
    """
    status = head.status
    if to_head or status < 200 or status in (204, 304):
        return 0
    headers = head.headers
    if "transfer-encoding" not in headers:
        text = headers.get("content-length")
        if text is None:
            return UNTIL_CLOSE
        if text.isdigit() and text.isascii() and len(text) <= _MAX_DIGITS:
            return int(text)  # the common case, spelled out: one call less per message
    return _body_length(headers, 400)


def _body_length(headers: dict[str, str], unsupported: int) -> int:
    coding = headers.get("transfer-encoding")
    if coding is None:
        text = headers.get("content-length")
        if text is not None and text.isdigit() and text.isascii() and len(text) <= _MAX_DIGITS:
            return int(text)  # the common case, spelled out: one call less per message
        return content_length(headers) or 0
    length = content_length(headers)
    if length is not None:
        raise ParseError("both Transfer-Encoding and Content-Length")
    if coding.strip().lower() != "chunked":
        raise ParseError(f"unsupported Transfer-Encoding {coding!r}", unsupported)
    return CHUNKED


def content_length(headers: dict[str, str]) -> int | None:
    """Return the ``Content-Length`` value, or ``None`` without one.

    Repeated fields, or one field listing several values, must all say the same (RFC 9110 §8.6).

    :raises ParseError: not a decimal number, or conflicting values
    """
    text = headers.get("content-length")
    if text is None:
        return None
    if "," in text:
        values = {value.strip(" \t") for value in text.split(",")}
        if len(values) != 1:
            raise ParseError(f"conflicting Content-Length values {text[:80]!r}")
        text = values.pop()
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_DIGITS:
        raise ParseError(f"malformed Content-Length {text[:40]!r}")
    return int(text)
