"""A lean HTTP/1.1 server connection on a blocking socket: read requests, stream bodies, send answers.

Written by hand because the per-request cost of ``http.server`` (e-mail header parsing, buffered file
objects, one flush per header) caps a loopback server near 1,500 requests/s. Here a 4 KiB PUT costs
one ``recv`` and one ``send``. Heads and chunked bodies are parsed by :mod:`airflow_ais_etl.runtime.http1`,
the sans-IO parser the dataplane's client uses too; this module does the socket side.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import struct
import time
from email.utils import formatdate

from airflow_ais_etl.runtime.http1 import (
    CHUNKED,
    CRLF,
    LAST_CHUNK,
    ChunkedDecoder,
    ParseError,
    chunk_size_line,
    find_head_end,
    parse_request_head,
    request_body_length,
)

RECV_SIZE = 256 * 1024
_SMALL_BODY = 64 * 1024
_DRAIN_LIMIT = 64 * 1024 * 1024

REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}

_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """Return the ``Date`` header value, recomputed at most once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]


class HttpError(Exception):
    """A request the server answers with ``status`` and then closes the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ClientGone(Exception):
    """The peer closed or reset the connection mid-request."""


class Request:
    """One parsed request head plus a reader for its body."""

    __slots__ = ("body", "headers", "keep_alive", "method", "path", "query", "target", "version")

    def __init__(
        self,
        method: str,
        target: str,
        version: str,
        headers: dict[str, str],
        keep_alive: bool,
        body: BodyReader,
    ) -> None:
        self.method = method
        self.target = target
        path, _, query = target.partition("?")
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.body = body


class Connection:
    """Server side of one accepted TCP connection (not thread-safe: one thread owns it)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.response_started = False
        self.close_after = False
        self.head_only = False  # answering HEAD: never send a body
        self.announce_keep_alive = False  # HTTP/1.0 client that asked for keep-alive
        # While not None, answers are collected here instead of sent (the event loop flushes them).
        self.out: list[bytes | bytearray | memoryview] | None = None

    # ---------------------------------------------------------------- reading

    def recv_some(self) -> bytes:
        """Receive the next bytes from the peer; raise :class:`ClientGone` at EOF or on errors."""
        try:
            data = self.sock.recv(RECV_SIZE)
        except OSError as exc:  # reset, timeout (SO_RCVTIMEO), shut down
            raise ClientGone(str(exc)) from exc
        if not data:
            raise ClientGone("connection closed by peer")
        return data

    def head_buffered(self) -> bool:
        """Tell whether :meth:`read_request` can run without waiting: a whole head is buffered, or a bad one."""
        try:
            return find_head_end(self.buf) >= 0
        except ParseError:
            return True  # read_request answers it

    def read_request(self) -> Request:
        """Parse the buffered request head (reading more as needed); raise :class:`HttpError` if malformed."""
        buf = self.buf
        try:
            end = find_head_end(buf)
            while end < 0:
                searched = len(buf)
                try:
                    buf += self.recv_some()
                except ClientGone as exc:
                    raise HttpError(400, "incomplete request head") from exc
                end = find_head_end(buf, searched)
            head = parse_request_head(bytes(buf[:end]))
            del buf[:end]
            length = request_body_length(head)
        except ParseError as exc:
            raise HttpError(exc.status, str(exc)) from None
        if not head.target.startswith("/"):
            raise HttpError(400, "request target must be an absolute path")
        expect = head.headers.get("expect", "").lower() == "100-continue"
        body = BodyReader(self, length, expect)
        return Request(head.method, head.target, head.version, head.headers, head.keep_alive, body)

    # ---------------------------------------------------------------- writing

    def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send every byte or raise :class:`ClientGone`."""
        if self.out is not None:
            self.out.append(data)
            return
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise ClientGone(str(exc)) from exc

    def send_parts(self, parts: list[memoryview]) -> None:
        """Send several buffers with as few system calls as possible (scatter/gather)."""
        if self.out is not None:
            self.out.extend(parts)
            return
        views = [p for p in parts if len(p)]
        try:
            while views:
                sent = self.sock.sendmsg(views)
                while sent:
                    first = len(views[0])
                    if sent >= first:
                        sent -= first
                        views.pop(0)
                    else:
                        views[0] = views[0][sent:]
                        sent = 0
        except OSError as exc:
            raise ClientGone(str(exc)) from exc

    def _head(self, status: int, headers: list[tuple[str, str]]) -> bytearray:
        out = bytearray(b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "Unknown").encode()))
        out += b"Date: " + http_date() + b"\r\n"
        for name, value in headers:
            out += f"{name}: {value}\r\n".encode("latin-1", "replace")
        if self.close_after:
            out += b"Connection: close\r\n"
        elif self.announce_keep_alive:
            out += b"Connection: keep-alive\r\n"
        out += b"\r\n"
        return out

    def send_response(
        self,
        status: int,
        body: bytes | bytearray | memoryview,
        content_type: str = "application/octet-stream",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """Send a complete response with ``Content-Length``."""
        all_headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if headers:
            all_headers.extend(headers)
        head = self._head(status, all_headers)
        self.response_started = True
        if self.head_only:
            self.send_all(head)
        elif len(body) <= _SMALL_BODY:
            head += body
            self.send_all(head)
        else:
            self.send_parts([memoryview(head), memoryview(body)])

    def send_text(self, status: int, text: str, headers: list[tuple[str, str]] | None = None) -> None:
        """Send a short plain-text response (errors, health)."""
        self.send_response(status, text.encode("utf-8", "replace"), "text/plain; charset=utf-8", headers)

    def start_chunked(self, status: int = 200, content_type: str = "application/octet-stream") -> None:
        """Send a response head announcing a chunked body."""
        head = self._head(status, [("Content-Type", content_type), ("Transfer-Encoding", "chunked")])
        self.response_started = True
        self.send_all(head)

    def send_chunk(self, data: bytes | bytearray | memoryview) -> None:
        """Send one non-empty chunk of a chunked body."""
        size = len(data)
        if not size:
            return
        if size <= _SMALL_BODY:
            self.send_all(chunk_size_line(size) + bytes(data) + CRLF)
        else:
            self.send_parts([memoryview(chunk_size_line(size)), memoryview(data), memoryview(CRLF)])

    def end_chunked(self) -> None:
        """Send the terminating zero-length chunk: the body is complete."""
        self.send_all(LAST_CHUNK)

    def abort(self) -> None:
        """Reset the connection so the peer sees an error instead of a complete body."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self) -> None:
        """Close the socket (idempotent)."""
        with contextlib.suppress(OSError):
            self.sock.close()


class BodyReader:
    """Request body as a byte stream (``Content-Length`` or chunked); ``read`` returns b"" at the end."""

    __slots__ = ("_chunks", "_conn", "_continue_pending", "_decoded", "_left", "_offset", "done")

    def __init__(self, conn: Connection, length: int, expect_continue: bool) -> None:
        self._conn = conn
        self._chunks: ChunkedDecoder | None = None
        self._decoded: collections.deque[bytes] | None = None  # chunked: decoded, not yet read
        self._offset = 0  # into the first decoded piece
        if length == CHUNKED:
            self._chunks = ChunkedDecoder()
            self._decoded = collections.deque()
            length = 0
        self._left = length
        self.done = self._chunks is None and length == 0
        self._continue_pending = expect_continue and not self.done

    @property
    def length(self) -> int | None:
        """Return the declared length, or None for a chunked body."""
        return None if self._chunks is not None else self._left

    def _send_continue(self) -> None:
        self._continue_pending = False
        if not self._conn.response_started:
            self._conn.send_all(b"HTTP/1.1 100 Continue\r\n\r\n")

    def read(self, n: int = -1) -> bytes:
        """Return up to ``n`` bytes (all remaining if ``n`` < 0); b"" once the body is consumed."""
        if self.done:
            return b""
        if self._continue_pending:
            self._send_continue()
        if n < 0:
            return self.read_all()
        if n == 0:
            return b""
        if self._chunks is not None:
            return self._read_chunked(n)
        return self._read_plain(n)

    def read_all(self) -> bytes:
        """Return the rest of the body."""
        if self.done:
            return b""
        if self._continue_pending:
            self._send_continue()
        if self._chunks is None:
            return self._read_exact(self._left)
        parts = [self._read_chunked(RECV_SIZE)]  # what was decoded already (a first piece may be read)
        decoded = self._decoded
        assert decoded is not None
        parts += decoded
        decoded.clear()
        while not self._chunks.done:
            parts += self._decode_more()
        self.done = True
        return b"".join(parts)

    def _read_plain(self, n: int) -> bytes:
        conn = self._conn
        want = min(n, self._left)
        buf = conn.buf
        if buf:
            data = bytes(buf[:want])
            del buf[: len(data)]
        else:
            try:
                data = conn.sock.recv(min(want, RECV_SIZE))
            except OSError as exc:
                raise ClientGone(str(exc)) from exc
            if not data:
                raise ClientGone("connection closed in the middle of the request body")
        self._left -= len(data)
        if not self._left:
            self.done = True
        return data

    def _read_exact(self, n: int) -> bytes:
        conn = self._conn
        buf = conn.buf
        if len(buf) >= n:
            data = bytes(buf[:n])
            del buf[:n]
        elif n - len(buf) > _SMALL_BODY:
            data = _receive_whole(conn, buf, n)
        else:
            out = bytearray(n)
            view = memoryview(out)
            have = len(buf)
            view[:have] = buf
            buf.clear()
            while have < n:
                try:
                    got = conn.sock.recv_into(view[have:], min(n - have, 4 * RECV_SIZE))
                except OSError as exc:
                    raise ClientGone(str(exc)) from exc
                if not got:
                    raise ClientGone("connection closed in the middle of the request body")
                have += got
            view.release()
            data = bytes(out)
        self._left -= n
        self.done = True
        return data

    def _read_chunked(self, n: int) -> bytes:
        chunks = self._chunks
        decoded = self._decoded
        assert chunks is not None
        assert decoded is not None
        while not decoded:
            if chunks.done:
                self.done = True
                return b""
            decoded.extend(self._decode_more())
        piece = decoded[0]
        start = self._offset
        end = start + n
        if end >= len(piece):
            decoded.popleft()
            self._offset = 0
            data = piece[start:] if start else piece
        else:
            self._offset = end
            data = piece[start:end]
        if not decoded and chunks.done:
            self.done = True
        return data

    def _decode_more(self) -> list[bytes]:
        """Decode what is buffered, or the next bytes received; hand back what follows the body."""
        chunks = self._chunks
        assert chunks is not None
        conn = self._conn
        data = bytes(conn.buf) if conn.buf else conn.recv_some()
        conn.buf.clear()
        try:
            pieces = chunks.decode(data)
        except ParseError as exc:
            raise HttpError(exc.status, str(exc)) from None
        if chunks.done:
            conn.buf += chunks.rest  # the next request on this connection
        return pieces

    def drain(self) -> bool:
        """Consume what is left so the connection can serve the next request; False if it cannot."""
        if self.done:
            return True
        if self._continue_pending:
            return False  # the client waits for our go-ahead; closing is cheaper than reading
        total = 0
        try:
            while not self.done:
                total += len(self.read(RECV_SIZE))
                if total > _DRAIN_LIMIT:
                    return False
        except (ClientGone, HttpError):
            return False
        return True


def _receive_whole(conn: Connection, buf: bytearray, n: int) -> bytes:
    """Receive the rest of a large ``n``-byte body straight into the bytes the transform gets.

    ``recv(MSG_WAITALL)`` on the blocking socket lets the kernel fill one buffer of the body's size:
    a 64 MiB body costs one copy, not a zeroed bytearray, the receive and a conversion to bytes
    (three passes over memory and twice the body's size at once). What the head's read brought
    already is joined in front. A receive cut short (timeout, signal) goes on piece by piece.
    """
    have = len(buf)
    want = n - have
    sock = conn.sock
    try:
        rest = sock.recv(want, socket.MSG_WAITALL)
        if len(rest) < want:
            parts = [rest]
            got = len(rest)
            while rest and got < want:
                rest = sock.recv(min(want - got, 4 * RECV_SIZE))
                parts.append(rest)
                got += len(rest)
            if got < want:
                raise ClientGone("connection closed in the middle of the request body")
            rest = b"".join(parts)
    except OSError as exc:
        raise ClientGone(str(exc)) from exc
    if not have:
        return rest
    data = b"".join((buf, rest))
    buf.clear()
    return data
