"""Parse the answers arriving on one client connection: push bytes in as they come, pull events out."""

from __future__ import annotations

import collections

from airflow_ais_etl.runtime.http1.chunked import ChunkedDecoder
from airflow_ais_etl.runtime.http1.errors import ParseError
from airflow_ais_etl.runtime.http1.framing import CHUNKED, response_body_length
from airflow_ais_etl.runtime.http1.heads import ResponseHead, find_head_end, parse_response_head

IDLE, HEAD, LENGTH, CHUNKED_BODY, UNTIL_CLOSE = range(5)
"""Parser states: no answer expected, in the head, in a body of known length, chunked, close-delimited."""


class EndOfMessage:
    """The event that ends an answer: its whole body has been handed out."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END = EndOfMessage()
Event = ResponseHead | bytes | EndOfMessage


class ResponseParser:
    """The answers on one connection, one per :meth:`expect` (no I/O here).

    Call :meth:`expect` before each answer, :meth:`feed` with every piece received, and take
    :meth:`next_event` until it returns ``None`` (more bytes needed). Events: the answer's
    :class:`ResponseHead` (informational 1xx heads are skipped), its body as ``bytes`` pieces, then
    :data:`END`; the parser is then :data:`IDLE` again and :attr:`leftover` counts the bytes
    received beyond the answer. A close-delimited body (state :data:`UNTIL_CLOSE`) ends with the
    connection, which the caller sees and the parser does not.
    """

    __slots__ = ("_chunks", "_data", "_decoded", "_head", "_pos", "_searched", "_to_head", "left", "state")

    def __init__(self) -> None:
        self.state = IDLE
        self.left = 0
        """Body bytes still due while in :data:`LENGTH`."""
        self._to_head = False
        self._data = b""  # received bytes not yet parsed start at _pos
        self._pos = 0
        self._head = bytearray()  # the start of a head that arrived in several pieces
        self._searched = 0
        self._chunks = ChunkedDecoder()
        self._decoded: collections.deque[bytes] = collections.deque()

    def expect(self, to_head: bool) -> None:
        """Get ready for the answer to the next request; ``to_head``: that request is a ``HEAD``."""
        self.reset()
        self.state = HEAD
        self._to_head = to_head

    def reset(self) -> None:
        """Expect nothing and drop whatever is buffered."""
        self.state = IDLE
        self.left = 0
        self._data = b""
        self._pos = 0
        self._searched = 0
        if self._head:
            self._head.clear()
        if self._decoded:
            self._decoded.clear()

    @property
    def leftover(self) -> int:
        """Count the received bytes that no event consumed yet."""
        return len(self._data) - self._pos + len(self._head)

    def feed(self, data: bytes) -> None:
        """Add received bytes."""
        if self._pos < len(self._data):
            self._data = self._data[self._pos :] + data
        else:
            self._data = data
        self._pos = 0

    def take_body(self, n: int) -> bool:
        """Count ``n`` just received bytes as body that the caller consumes itself, if they surely are.

        True only in the middle of a ``Content-Length`` body with nothing buffered and more than ``n``
        bytes still due: the bytes are body and not its end, so the caller may hand them on without
        feeding (copying) them here. Otherwise False: feed them as usual.
        """
        if self.state != LENGTH or n >= self.left or self._pos < len(self._data) or self._head:
            return False
        self.left -= n
        return True

    def next_event(self) -> Event | None:
        """Return the next event, or ``None`` until more bytes are fed.

        :raises ParseError: the answer is malformed; the connection cannot be used any more
        """
        state = self.state
        if state == LENGTH:
            left = self.left
            if not left:
                self.state = IDLE
                return END
            data = self._data
            pos = self._pos
            avail = len(data) - pos
            if not avail:
                return None
            if avail <= left:
                piece = data[pos:] if pos else data
            else:
                piece = data[pos : pos + left]
            self._pos = pos + len(piece)
            self.left = left - len(piece)
            return piece
        if state == HEAD:
            return self._next_head()
        if state == CHUNKED_BODY:
            return self._next_chunk()
        if state == UNTIL_CLOSE and self._pos < len(self._data):
            piece = self._data[self._pos :] if self._pos else self._data
            self._data = b""
            self._pos = 0
            return piece
        return None

    def _next_head(self) -> ResponseHead | None:
        while True:
            buf = self._head
            if buf:  # the head began in an earlier piece
                buf += self._data[self._pos :]
                end = find_head_end(buf, self._searched)
                if end < 0:
                    self._data = b""
                    self._pos = 0
                    self._searched = len(buf)
                    return None
                head = bytes(buf[:end])
                self._data = bytes(buf[end:])
                self._pos = 0
                buf.clear()
            else:
                data = self._data[self._pos :] if self._pos else self._data
                end = find_head_end(data)
                if end < 0:
                    buf += data
                    self._data = b""
                    self._pos = 0
                    self._searched = len(data)
                    return None
                head = data[:end] if end < len(data) else data
                self._data = data
                self._pos = end
            self._searched = 0
            parsed = parse_response_head(head)
            if parsed.status >= 200:
                break
            if parsed.status == 101:
                raise ParseError("the server switched protocols")
            # An informational (1xx) answer: the real one follows.
        length = response_body_length(parsed, self._to_head)
        if length >= 0:
            self.state = LENGTH
            self.left = length
        elif length == CHUNKED:
            self.state = CHUNKED_BODY
            self._chunks = ChunkedDecoder()
        else:
            self.state = UNTIL_CLOSE
        return parsed

    def _next_chunk(self) -> bytes | EndOfMessage | None:
        decoded = self._decoded
        while not decoded:
            chunks = self._chunks
            if chunks.done:
                self._data = chunks.rest
                self._pos = 0
                self.state = IDLE
                return END
            if self._pos >= len(self._data):
                return None
            data = self._data[self._pos :] if self._pos else self._data
            self._data = b""
            self._pos = 0
            decoded.extend(chunks.decode(data))
        return decoded.popleft()
