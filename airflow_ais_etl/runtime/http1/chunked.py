"""Chunked transfer coding (RFC 9112 §7.1): decode it from bytes pushed in pieces of any size, frame chunks to send."""

from __future__ import annotations

import re

from airflow_ais_etl.runtime.http1.errors import ParseError
from airflow_ais_etl.runtime.http1.heads import FIELD_LINE, MAX_HEAD_BYTES, MAX_HEADERS, MAX_LINE_BYTES

LAST_CHUNK = b"0\r\n\r\n"
"""The zero-size chunk and the empty trailer section that end a chunked body."""
CRLF = b"\r\n"
"""What follows each chunk's data."""

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_EXTENSION = rb"[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?"
_SIZE_LINE = re.compile(rb"0*([0-9A-Fa-f]{1,16})(?:" + _EXTENSION + rb")*")
"""A chunk-size line without its CRLF: the size in hex (at most 2**64 - 1), then any extensions."""
_SIZE_CRLF = re.compile(_SIZE_LINE.pattern + rb"\r\n")

_SIZE, _DATA, _DATA_CR, _DATA_LF, _TRAILER, _DONE = range(6)


def chunk_size_line(size: int) -> bytes:
    """Return the line that announces a chunk of ``size`` bytes; send the data and :data:`CRLF` after it."""
    return b"%x\r\n" % size


class ChunkedDecoder:
    """Decode one chunked body from bytes pushed in pieces of any size (no I/O here).

    :meth:`decode` returns the body bytes each piece completes. After the last chunk and the
    trailer section :attr:`done` is set and :attr:`rest` holds whatever followed the body (the next
    message on a keep-alive connection). Chunk extensions and trailer fields are checked, then
    dropped: nobody here uses them.
    """

    __slots__ = ("_left", "_line", "_state", "_trailer_bytes", "_trailers", "done", "rest")

    def __init__(self) -> None:
        self._state = _SIZE
        self._left = 0
        self._line = bytearray()
        self._trailers = 0
        self._trailer_bytes = 0
        self.done = False
        self.rest = b""

    def decode(self, data: bytes) -> list[bytes]:
        """Consume ``data``; return the body bytes in it (no empty ones).

        :raises ParseError: malformed framing; the body is then lost
        """
        if self.done:
            self.rest += data
            return []
        out: list[bytes] = []
        pos = 0
        n = len(data)
        while pos < n:
            state = self._state
            if state == _DATA:
                take = min(self._left, n - pos)
                out.append(data if take == n else data[pos : pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._state = _DATA_CR
            elif state == _SIZE and not self._line and (match := _SIZE_CRLF.match(data, pos)):
                if match.end() - pos > MAX_LINE_BYTES + 2:
                    raise ParseError(f"chunk-size line longer than {MAX_LINE_BYTES} bytes")
                pos = match.end()  # the common case: a whole chunk-size line in this piece
                self._on_size(int(match.group(1), 16))
            elif state == _DATA_CR and data.startswith(b"\r\n", pos):
                pos += 2
                self._state = _SIZE
            elif state == _DATA_CR or state == _DATA_LF:
                if data[pos] != (13 if state == _DATA_CR else 10):
                    raise ParseError("no CRLF after the data of a chunk")
                pos += 1
                self._state = _DATA_LF if state == _DATA_CR else _SIZE
            else:
                line, pos = self._take_line(data, pos)
                if line is None:
                    break
                if state == _SIZE:
                    self._on_size_line(line)
                elif line:
                    self._on_trailer_line(line)
                else:
                    self.done = True
                    self._state = _DONE
                    self.rest = data[pos:]
                    break
        return out

    def _take_line(self, data: bytes, pos: int) -> tuple[bytes | None, int]:
        """Return the line at ``pos`` without its CRLF and where the next one starts; ``None`` if it goes on."""
        nl = data.find(b"\n", pos)
        if nl < 0:
            self._line += data[pos:]
            if len(self._line) > MAX_LINE_BYTES:
                raise ParseError(f"chunk-size or trailer line longer than {MAX_LINE_BYTES} bytes")
            return None, len(data)
        line = data[pos:nl]
        if self._line:
            line = bytes(self._line) + line
            self._line.clear()
        if len(line) > MAX_LINE_BYTES + 1:
            raise ParseError(f"chunk-size or trailer line longer than {MAX_LINE_BYTES} bytes")
        if line[-1:] != b"\r":
            raise ParseError(f"lines must end in CRLF, not in a bare LF: {line[:40]!r}")
        return line[:-1], nl + 1

    def _on_size(self, size: int) -> None:
        if size:
            self._left = size
            self._state = _DATA
        else:
            self._state = _TRAILER

    def _on_size_line(self, line: bytes) -> None:
        match = _SIZE_LINE.fullmatch(line)
        if match is None:
            raise ParseError(f"malformed chunk size {line[:40]!r}")
        self._on_size(int(match.group(1), 16))

    def _on_trailer_line(self, line: bytes) -> None:
        self._trailers += 1
        self._trailer_bytes += len(line) + 2
        if self._trailers > MAX_HEADERS or self._trailer_bytes > MAX_HEAD_BYTES:
            raise ParseError("trailer section too large", 431)
        if FIELD_LINE.fullmatch(line) is None:
            if line[:1] in (b" ", b"\t"):
                raise ParseError(f"obs-fold in a trailer field is not accepted: {line[:80]!r}")
            raise ParseError(f"malformed trailer field {line[:80]!r}")
