"""Find, split and check HTTP/1.1 message heads: the request or status line, then the header fields.

Strict wherever lenient parsers disagree, because that disagreement is what request smuggling
feeds on: every line ends in CRLF (a bare LF or CR is an error), no obs-fold continuation lines, no
whitespace between a field name and its colon, no control characters. Field names come out in
lower case; a repeated field is joined into one value with ``", "`` (RFC 9110 §5.3).

Each check is one regular expression over the whole head, so a well-formed head costs a few C
calls; only a malformed one is walked line by line, to say what is wrong with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from airflow_ais_etl.runtime.http1.errors import ParseError

MAX_HEAD_BYTES = 64 * 1024
"""Longest head accepted, its blank line included (longer: 431)."""
MAX_LINE_BYTES = 8 * 1024
"""Longest request target (longer: 414), reason phrase, or field value after its colon (longer: 431)."""
MAX_HEADERS = 128
"""Most header field lines in one head (more: 431)."""

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TEXT = rb"[^\x00-\x08\x0a-\x1f\x7f]"  # any byte but a control character (HTAB is allowed)
_LINE = b"{0,%d}" % MAX_LINE_BYTES
_REQUEST_LINE = rb"(" + _TOKEN + rb") ([^\x00-\x20\x7f]" + _LINE + rb") HTTP/([0-9])\.([0-9])"
_STATUS_LINE = rb"HTTP/1\.([0-9]) ([1-9][0-9]{2})(?: (" + _TEXT + _LINE + rb"))?"
_FIELD_LINES = rb"(?:" + _TOKEN + rb":" + _TEXT + _LINE + rb"\r\n)*\r\n"
_REQUEST_HEAD = re.compile(_REQUEST_LINE + rb"\r\n" + _FIELD_LINES)
_RESPONSE_HEAD = re.compile(_STATUS_LINE + rb"\r\n" + _FIELD_LINES)
_REQUEST_LINE_ONLY = re.compile(_REQUEST_LINE)
_STATUS_LINE_ONLY = re.compile(_STATUS_LINE)
FIELD_LINE = re.compile(_TOKEN + rb":" + _TEXT + rb"*")
"""One header or trailer field line without its CRLF."""


@dataclass(slots=True)
class RequestHead:
    """A parsed request head; ``headers`` maps lower-case names to values."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    keep_alive: bool


@dataclass(slots=True)
class ResponseHead:
    """A parsed response head; ``headers`` maps lower-case names to values."""

    version: str
    status: int
    reason: str
    headers: dict[str, str]
    keep_alive: bool


def find_head_end(buf: bytes | bytearray, searched: int = 0) -> int:
    """Return the length of the head that starts ``buf``, blank line included; -1 while it is incomplete.

    :param searched: how many leading bytes of ``buf`` earlier calls searched already
    :raises ParseError: the head is longer than :data:`MAX_HEAD_BYTES`, or its lines end in a bare LF
    """
    end = buf.find(b"\r\n\r\n", searched - 3 if searched > 3 else 0)
    if end >= 0:
        end += 4
        if end > MAX_HEAD_BYTES:
            raise ParseError(f"head longer than {MAX_HEAD_BYTES} bytes", 431)
        return end
    if len(buf) > MAX_HEAD_BYTES:
        raise ParseError(f"head longer than {MAX_HEAD_BYTES} bytes", 431)
    if buf.find(b"\n\n", searched - 1 if searched > 1 else 0) >= 0:
        raise ParseError("lines must end in CRLF, not in a bare LF")
    return -1


def parse_request_head(head: bytes) -> RequestHead:
    """Parse a whole request head (as delimited by :func:`find_head_end`).

    :raises ParseError: 400 if malformed, 414 or 431 past a limit, 505 for an HTTP version other
        than 1.0 and 1.1
    """
    match = _REQUEST_HEAD.fullmatch(head)
    if match is None:
        raise _head_error(head, _REQUEST_LINE_ONLY, "request line", 414)
    method, target, major, minor = match.groups()
    if major != b"1" or minor not in (b"0", b"1"):
        raise ParseError(f"HTTP/{major.decode()}.{minor.decode()} is not supported", 505)
    http11 = minor == b"1"
    headers = _fields(head)
    connection = headers.get("connection")
    return RequestHead(
        method.decode("ascii"),
        target.decode("latin-1"),
        "HTTP/1.1" if http11 else "HTTP/1.0",
        headers,
        http11 if connection is None else _keep_alive(http11, connection),
    )


def parse_response_head(head: bytes) -> ResponseHead:
    """Parse a whole response head (as delimited by :func:`find_head_end`).

    :raises ParseError: malformed, past a limit, or not HTTP/1.x
    """
    match = _RESPONSE_HEAD.fullmatch(head)
    if match is None:
        raise _head_error(head, _STATUS_LINE_ONLY, "status line", 431)
    minor, status, reason = match.groups()
    http11 = minor != b"0"
    headers = _fields(head)
    connection = headers.get("connection")
    return ResponseHead(
        "HTTP/1.1" if minor == b"1" else "HTTP/1." + minor.decode(),
        int(status),
        reason.decode("latin-1") if reason else "",
        headers,
        http11 if connection is None else _keep_alive(http11, connection),
    )


def _fields(head: bytes) -> dict[str, str]:
    """Map the field lines of a head that passed the whole-head check."""
    lines = head.decode("latin-1").split("\r\n")
    if len(lines) - 3 > MAX_HEADERS:  # the start line, then two empty strings after the blank line
        raise ParseError(f"more than {MAX_HEADERS} header fields", 431)
    fields: dict[str, str] = {}
    for line in lines[1:-2]:
        name, _, value = line.partition(":")
        key = name.lower()
        value = value.strip(" \t")
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    return fields


def _keep_alive(http11: bool, connection: str) -> bool:
    """Tell whether the connection stays open after a message with this ``Connection`` field (RFC 9112 §9.3)."""
    options = [option.strip() for option in connection.lower().split(",")]
    return "close" not in options if http11 else "keep-alive" in options


def _head_error(head: bytes, start_line: re.Pattern[bytes], what: str, too_long: int) -> ParseError:
    """Say what is wrong with a head that failed the whole-head check."""
    if not head.endswith(b"\r\n\r\n"):
        return ParseError("incomplete head (no blank line at its end)")
    lines = head[:-4].split(b"\r\n")
    for number, line in enumerate(lines):
        if b"\n" in line or b"\r" in line:
            return ParseError(f"lines must end in CRLF, not in a bare LF or CR: {line[:80]!r}")
        if number == 0:
            if start_line.fullmatch(line) is None:
                if len(line) > MAX_LINE_BYTES:
                    return ParseError(f"{what} longer than {MAX_LINE_BYTES} bytes", too_long)
                return ParseError(f"malformed {what} {line[:100]!r}")
            continue
        name, colon, value = line.partition(b":")
        if line[:1] in (b" ", b"\t"):
            return ParseError(
                f"obs-fold (a field line that starts with whitespace) is not accepted: {line[:80]!r}"
            )
        if not colon:
            return ParseError(f"malformed header field (no colon) {line[:80]!r}")
        if name[-1:] in (b" ", b"\t"):
            return ParseError(f"whitespace before the colon of a header field {line[:80]!r}")
        if FIELD_LINE.fullmatch(line) is None:
            return ParseError(f"malformed header field {line[:80]!r}")
        if len(value) > MAX_LINE_BYTES:
            return ParseError(f"header field value longer than {MAX_LINE_BYTES} bytes", 431)
    return ParseError(f"malformed head {head[:80]!r}")
