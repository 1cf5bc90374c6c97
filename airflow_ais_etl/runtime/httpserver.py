"""A lean HTTP/1.1 server connection on a blocking socket: parse requests, stream bodies, send answers.

Written by hand because the per-request cost of ``http.server`` (e-mail header parsing, buffered file
objects, one flush per header) caps a loopback server near 1,500 requests/s. Here a 4 KiB PUT costs
one ``recv`` and one ``send``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from email.utils import formatdate

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 128
MAX_CHUNK_LINE = 4096
RECV_SIZE = 256 * 1024
_SMALL_BODY = 64 * 1024
_DRAIN_LIMIT = 64 * 1024 * 1024
_HEX_DIGITS = b"0123456789abcdefABCDEF"

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

    def wait_head(self) -> bool:
        """Block until the start of a request head is buffered; False if the peer closed cleanly."""
        while True:
            # Tolerate empty lines between requests (RFC 9112 §2.2).
            while self.buf[:2] == b"\r\n":
                del self.buf[:2]
            if self.buf:
                return True
            try:
                data = self.sock.recv(RECV_SIZE)
            except OSError:
                return False
            if not data:
                return False
            self.buf += data

    def read_request(self) -> Request:
        """Parse the buffered request head (reading more as needed); raise :class:`HttpError` if malformed."""
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            if len(buf) > MAX_HEAD_BYTES:
                raise HttpError(431, "request head too large")
            scan_from = max(0, len(buf) - 3)
            try:
                buf += self.recv_some()
            except ClientGone as exc:
                raise HttpError(400, "incomplete request head") from exc
            end = buf.find(b"\r\n\r\n", scan_from)
        if end > MAX_HEAD_BYTES:
            raise HttpError(431, "request head too large")
        head = bytes(buf[:end])
        del buf[: end + 4]
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise HttpError(400, "malformed request line")
        method_b, target_b, version_b = parts
        if not method_b.isalpha() or not method_b.isupper():
            raise HttpError(400, "malformed request method")
        if version_b not in (b"HTTP/1.1", b"HTTP/1.0"):
            if version_b.startswith(b"HTTP/"):
                raise HttpError(505, "only HTTP/1.0 and HTTP/1.1 are supported")
            raise HttpError(400, "malformed request line")
        if len(lines) - 1 > MAX_HEADERS:
            raise HttpError(431, "too many header fields")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name[-1:] in (b" ", b"\t") or line[:1] in (b" ", b"\t"):
                raise HttpError(400, "malformed header field")
            key = name.decode("latin-1").lower()
            val = value.strip(b" \t").decode("latin-1")
            if key in headers:
                if key == "content-length" and headers[key] != val:
                    raise HttpError(400, "conflicting Content-Length fields")
                headers[key] = headers[key] + ", " + val
            else:
                headers[key] = val
        version = version_b.decode("ascii")
        conn_hdr = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            keep_alive = "close" not in conn_hdr
        else:
            keep_alive = "keep-alive" in conn_hdr
        body = self._body_reader(headers)
        target = target_b.decode("latin-1")
        if not target.startswith("/"):
            raise HttpError(400, "request target must be an absolute path")
        return Request(method_b.decode("ascii"), target, version, headers, keep_alive, body)

    def _body_reader(self, headers: dict[str, str]) -> BodyReader:
        te = headers.get("transfer-encoding")
        cl = headers.get("content-length")
        expect = headers.get("expect", "").lower() == "100-continue"
        if te is not None:
            if cl is not None:
                raise HttpError(400, "both Transfer-Encoding and Content-Length")
            if te.lower() != "chunked":
                raise HttpError(501, f"unsupported Transfer-Encoding {te!r}")
            return BodyReader(self, -1, expect)
        if cl is None:
            return BodyReader(self, 0, False)
        cl = cl.split(",")[0].strip()
        if not cl.isdigit() or len(cl) > 18:
            raise HttpError(400, "malformed Content-Length")
        return BodyReader(self, int(cl), expect)

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
            self.send_all(b"%x\r\n" % size + bytes(data) + b"\r\n")
        else:
            self.send_parts([memoryview(b"%x\r\n" % size), memoryview(data), memoryview(b"\r\n")])

    def end_chunked(self) -> None:
        """Send the terminating zero-length chunk: the body is complete."""
        self.send_all(b"0\r\n\r\n")

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

    __slots__ = ("_chunk_left", "_conn", "_continue_pending", "_left", "chunked", "done")

    def __init__(self, conn: Connection, length: int, expect_continue: bool) -> None:
        self._conn = conn
        self.chunked = length < 0
        self._left = 0 if self.chunked else length
        self._chunk_left = 0
        self.done = length == 0
        self._continue_pending = expect_continue and not self.done

    @property
    def length(self) -> int | None:
        """Return the declared length, or None for a chunked body."""
        return None if self.chunked else self._left

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
        if self.chunked:
            return self._read_chunked(n)
        return self._read_plain(n)

    def read_all(self) -> bytes:
        """Return the rest of the body."""
        if self.done:
            return b""
        if self._continue_pending:
            self._send_continue()
        if not self.chunked:
            return self._read_exact(self._left)
        parts = []
        while not self.done:
            parts.append(self._read_chunked(RECV_SIZE))
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

    def _fill(self, size: int) -> None:
        conn = self._conn
        while len(conn.buf) < size:
            conn.buf += conn.recv_some()

    def _readline(self) -> bytes:
        conn = self._conn
        while True:
            idx = conn.buf.find(b"\r\n")
            if idx >= 0:
                line = bytes(conn.buf[:idx])
                del conn.buf[: idx + 2]
                return line
            if len(conn.buf) > MAX_CHUNK_LINE:
                raise HttpError(400, "chunk header line too long")
            conn.buf += conn.recv_some()

    def _read_chunked(self, n: int) -> bytes:
        if not self._chunk_left:
            line = self._readline()
            size_field = line.split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError as exc:
                raise HttpError(400, "malformed chunk size") from exc
            if not size_field or size_field.strip(_HEX_DIGITS):
                raise HttpError(400, "malformed chunk size")
            if size == 0:
                # Trailer fields until the empty line; ignored.
                while self._readline():
                    pass
                self.done = True
                return b""
            self._chunk_left = size
        conn = self._conn
        want = min(n, self._chunk_left)
        if not conn.buf:
            conn.buf += conn.recv_some()
        data = bytes(conn.buf[:want])
        del conn.buf[: len(data)]
        self._chunk_left -= len(data)
        if not self._chunk_left:
            self._fill(2)
            if conn.buf[:2] != b"\r\n":
                raise HttpError(400, "malformed chunk terminator")
            del conn.buf[:2]
        return data

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
