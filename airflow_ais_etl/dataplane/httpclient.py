"""A small keep-alive HTTP/1.1 client on asyncio, built for many small requests to a few pods.

Why not aiohttp: the offline engine sends tens of thousands of small objects per second through
one process, and a general-purpose client spends most of the per-object CPU (measured with
bench/offline_bench.py). This client does only what the communicators need: one request at a
time per connection, a per-host pool of keep-alive connections, the request head and a small body
in one buffer, a hand-written response parser (``Content-Length``, chunked, or close-delimited
bodies) and streaming with back-pressure both ways for large objects.

It reports failures by where they happened, so callers can decide what is safe to re-send:
:class:`ConnectionFailed` before any response byte, :class:`ProtocolError` for a bad or cut
response head, :class:`BodyError` for a body that ended early, :class:`TimeoutError` when the
request's deadline passed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import socket
import ssl
from collections.abc import AsyncIterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = [
    "BodyError",
    "ConnectionFailed",
    "HTTPClient",
    "HTTPClientError",
    "Headers",
    "ProtocolError",
    "RequestBodyError",
    "Response",
]

_MAX_HEAD = 64 << 10
_MAX_LINE = 8 << 10
_HIGH_WATER = 1 << 20
"""Pause reading a response once this much of its body waits unread (resume below a quarter)."""
_ONE_WRITE = 256 << 10
"""Bodies up to this size go into the same buffer (and usually the same send) as the head."""
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Parser states of a connection.
_IDLE, _HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _UNTIL_EOF = range(8)


class HTTPClientError(Exception):
    """A request failed in transport (never raised for an HTTP status)."""


class ConnectionFailed(HTTPClientError):
    """The request failed before any byte of the answer arrived: re-sending it is safe.

    :param cause: the socket error, or ``None`` when the server closed the connection without answering
    :param reused: the connection came from the pool (the server may have closed it while idle)
    """

    def __init__(self, message: str, cause: BaseException | None, *, reused: bool) -> None:
        super().__init__(message)
        self.cause = cause
        self.reused = reused


class ProtocolError(HTTPClientError):
    """The answer was malformed, or the connection broke inside the response head."""


class BodyError(HTTPClientError):
    """The response body ended early or was aborted by the server."""


class RequestBodyError(HTTPClientError):
    """A streamed request body did not match the size announced for it."""


class Headers(Mapping[str, str]):
    """Response header fields, looked up without regard to case; repeated fields are joined by ``, ``."""

    __slots__ = ("_map",)

    def __init__(self, fields: dict[str, str]) -> None:
        self._map = fields

    def __getitem__(self, key: str) -> str:
        return self._map[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._map

    def get(self, key: str, default: Any = None) -> Any:
        return self._map.get(key.lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __repr__(self) -> str:
        return f"Headers({self._map!r})"


def _describe(err: BaseException | None) -> str:
    if err is None:
        return "closed by the server"
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class Response:
    """One answer: status, header fields, and a body read with :meth:`read` or :meth:`iter_chunks`.

    The body arrives in the background; its connection goes back to the pool as soon as the last
    byte is in, whether or not it was read yet. :meth:`close` drops an unfinished answer together
    with its connection.
    """

    __slots__ = (
        "_conn",
        "_done",
        "_exc",
        "_loop",
        "_parts",
        "_size",
        "_unbounded",
        "_upload",
        "_waiter",
        "content_length",
        "headers",
        "reason",
        "status",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, status: int, reason: str, headers: Headers, conn: _Conn
    ) -> None:
        self._loop = loop
        self.status = status
        self.reason = reason
        self.headers = headers
        self.content_length: int | None = None
        self._conn: _Conn | None = conn
        self._parts: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._done = False
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._unbounded = False
        self._upload: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ fed by the connection
    def _feed(self, data: bytes) -> None:
        self._parts.append(data)
        self._size += len(data)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if self._size > _HIGH_WATER and not self._unbounded and self._conn is not None:
            self._conn.pause_reading()

    def _finish(self, exc: BaseException | None) -> None:
        if self._done:
            return
        self._done = True
        self._exc = exc
        self._conn = None
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # ------------------------------------------------------------------ for the caller
    @property
    def complete(self) -> bool:
        """Tell whether the whole body has arrived (an error counts as arrived)."""
        return self._done

    async def _more(self) -> None:
        waiter = self._loop.create_future()
        self._waiter = waiter
        await waiter

    def _taken(self, n: int) -> None:
        self._size -= n
        conn = self._conn
        if conn is not None and conn.reading_paused and self._size <= _HIGH_WATER // 4:
            conn.resume_reading()

    async def read(self) -> bytes:
        """Return the whole body; raise :class:`BodyError` or :class:`TimeoutError` if it broke off."""
        try:
            if not self._done:
                self._unbounded = True
                conn = self._conn
                if conn is not None and conn.reading_paused:
                    conn.resume_reading()
                while not self._done:
                    await self._more()
            if self._exc is not None:
                raise self._exc
            parts = self._parts
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            parts.clear()
            self._size = 0
            return data
        except BaseException:
            self.close()
            raise

    async def read_some(self, limit: int) -> tuple[bytes, bool]:
        """Return up to ``limit`` bytes of the body and whether that is all of it (never raises body errors)."""
        try:
            while self._size < limit and not self._done:
                self._unbounded = True
                await self._more()
        except BaseException:
            self.close()
            raise
        data = b"".join(self._parts)[:limit]
        complete = self._done and self._exc is None and self._size <= limit
        if not complete:
            self.close()
        return data, complete

    async def iter_chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        """Yield the body in chunks of at most ``chunk_size`` bytes, as it arrives."""
        parts = self._parts
        try:
            while True:
                while parts:
                    chunk = parts.popleft()
                    self._taken(len(chunk))
                    if len(chunk) <= chunk_size:
                        yield chunk
                    else:
                        view = memoryview(chunk)
                        for i in range(0, len(chunk), chunk_size):
                            yield bytes(view[i : i + chunk_size])
                if self._done:
                    break
                await self._more()
            if self._exc is not None:
                raise self._exc
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Drop the answer; an unfinished one takes its connection with it (idempotent)."""
        if self._upload is not None and not self._upload.done():
            self._upload.cancel()
        conn = self._conn
        if conn is not None and not self._done:
            conn.abort()
        if not self._done:
            self._finish(BodyError("response closed before its end"))
        self._parts.clear()
        self._size = 0


class _Conn(asyncio.Protocol):
    """One keep-alive connection: runs one request at a time and parses its answer as bytes arrive."""

    def __init__(self, pool: _HostPool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.reused = False
        self.idle_since = 0.0
        self.reading_paused = False
        self._state = _IDLE
        self._buf = bytearray()
        self._head_waiter: asyncio.Future[Response] | None = None
        self._resp: Response | None = None
        self._left = 0
        self._got = 0
        self._keep = True
        self._head_only = False
        self._uploading = False
        self._upload_exc: BaseException | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timed_out: float | None = None
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._counted = True

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain = self._drain
        if drain is not None:
            self._drain = None
            if not drain.done():
                drain.set_result(None)

    def pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None and not self.lost:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None and not self.lost:
            self.reading_paused = False
            self.transport.resume_reading()

    def eof_received(self) -> bool:
        if self._state == _UNTIL_EOF:
            self._complete()
        return False  # let the transport close; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._cancel_timer()
        state = self._state
        if self._timed_out is not None:
            err: BaseException = TimeoutError(f"no complete answer within {self._timed_out:g}s")
        elif self._upload_exc is not None:
            err = self._upload_exc
        elif state == _HEAD and self._got == 0:
            err = ConnectionFailed(f"connection {_describe(exc)} before any answer", exc, reused=self.reused)
        elif state == _HEAD:
            err = ProtocolError(f"connection {_describe(exc)} inside the response head")
        else:
            err = BodyError(self._cut_reason(exc))
        if exc is not None and err is not exc:
            err.__cause__ = exc
        self._report(err)
        drain = self._drain
        if drain is not None:
            self._drain = None
            if not drain.done():
                drain.set_exception(ConnectionResetError("connection lost while sending"))
        self.pool.forget(self)

    def _cut_reason(self, exc: BaseException | None) -> str:
        resp = self._resp
        got = resp._size if resp is not None else 0
        if self._state == _LENGTH and resp is not None and resp.content_length is not None:
            got = resp.content_length - self._left
            return f"connection {_describe(exc)} after {got} of {resp.content_length} bytes"
        if self._state in (_CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER):
            return f"connection {_describe(exc)} before the last chunk"
        return f"connection {_describe(exc)} in the response body"

    def data_received(self, data: bytes) -> None:
        state = self._state
        self._got += len(data)
        if state == _HEAD:
            buf = self._buf
            if buf:
                buf += data
                data = bytes(buf)
                buf.clear()
            end = data.find(b"\r\n\r\n")
            while end >= 0:
                rest = data[end + 4 :]
                if not self._on_head(data[:end]):
                    return
                if self._state != _HEAD:
                    break
                data = rest  # an informational (1xx) answer: the real one follows
                end = data.find(b"\r\n\r\n")
            else:
                if len(data) > _MAX_HEAD:
                    self._fail(ProtocolError(f"response head longer than {_MAX_HEAD} bytes"))
                    return
                if data:
                    buf += data
                return
            data = rest
            state = self._state
            if not data:
                if state == _LENGTH and not self._left:
                    self._complete()
                return
        if state == _LENGTH:
            left = self._left
            n = len(data)
            if n >= left:
                if left:
                    assert self._resp is not None
                    self._resp._feed(data if n == left else data[:left])
                self._left = 0
                if n > left:
                    self._keep = False  # bytes nobody asked for: never reuse this connection
                self._complete()
                return
            self._left = left - n
            assert self._resp is not None
            self._resp._feed(data)
            return
        if state == _UNTIL_EOF:
            assert self._resp is not None
            self._resp._feed(data)
            return
        if state == _IDLE:
            self._keep = False  # unsolicited bytes: the connection is out of step
            if self.transport is not None:
                self.transport.close()
            return
        self._feed_chunked(data)

    # ------------------------------------------------------------------ parsing
    def _on_head(self, head: bytes) -> bool:
        """Parse a response head; return ``False`` after failing the connection."""
        lines = head.split(b"\r\n")
        status_line = lines[0]
        parts = status_line.split(None, 2)
        try:
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
                raise ValueError
            status = int(parts[1])
            if not 100 <= status <= 999:
                raise ValueError
        except ValueError:
            self._fail(ProtocolError(f"malformed status line {status_line[:100]!r}"))
            return False
        if 100 <= status < 200:
            if status == 101:
                self._fail(ProtocolError("the server switched protocols"))
                return False
            return True  # stay in _HEAD
        fields: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                self._fail(ProtocolError(f"malformed header line {line[:100]!r}"))
                return False
            key = name.decode("latin-1").lower()
            text = value.strip().decode("latin-1")
            old = fields.get(key)
            if old is None:
                fields[key] = text
            elif key == "content-length":
                if old != text:
                    self._fail(ProtocolError("conflicting Content-Length fields"))
                    return False
            else:
                fields[key] = old + ", " + text
        reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        resp = Response(self.loop, status, reason, Headers(fields), self)
        connection = fields.get("connection", "").lower()
        if parts[0] == b"HTTP/1.0":
            self._keep = self._keep and "keep-alive" in connection
        elif "close" in connection:
            self._keep = False
        te = fields.get("transfer-encoding")
        cl = fields.get("content-length")
        if self._head_only or status in (204, 304):
            self._state = _LENGTH
            self._left = 0
            resp.content_length = 0 if status == 204 else None
        elif te is not None:
            if te.lower().rpartition(",")[2].strip() != "chunked":
                self._fail(ProtocolError(f"unsupported Transfer-Encoding {te!r}"))
                return False
            self._state = _CHUNK_SIZE
        elif cl is not None:
            try:
                length = int(cl)
                if length < 0 or not cl.isdigit():
                    raise ValueError
            except ValueError:
                self._fail(ProtocolError(f"malformed Content-Length {cl!r}"))
                return False
            self._state = _LENGTH
            self._left = length
            resp.content_length = length
        else:
            self._state = _UNTIL_EOF
            self._keep = False
        self._resp = resp
        waiter = self._head_waiter
        self._head_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(resp)
        return True

    def _feed_chunked(self, data: bytes) -> None:
        pos = 0
        n = len(data)
        buf = self._buf
        resp = self._resp
        assert resp is not None
        while pos < n:
            state = self._state
            if state == _CHUNK_DATA:
                take = min(self._left, n - pos)
                resp._feed(data if take == n else data[pos : pos + take])
                pos += take
                self._left -= take
                if not self._left:
                    self._state = _CHUNK_END
                continue
            nl = data.find(b"\n", pos)
            if nl < 0:
                buf += data[pos:]
                if len(buf) > _MAX_LINE:
                    self._fail(BodyError("chunk framing line too long"))
                return
            if buf:
                buf += data[pos:nl]
                line = bytes(buf)
                buf.clear()
            else:
                line = data[pos:nl]
            pos = nl + 1
            line = line.rstrip(b"\r")
            if state == _CHUNK_END:
                if line:
                    self._fail(BodyError("malformed chunked body (no CRLF after a chunk)"))
                    return
                self._state = _CHUNK_SIZE
            elif state == _CHUNK_SIZE:
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                    if size < 0 or size_text[:1] in (b"+", b"-"):
                        raise ValueError
                except ValueError:
                    self._fail(BodyError(f"malformed chunk size {line[:40]!r}"))
                    return
                if size:
                    self._state = _CHUNK_DATA
                    self._left = size
                else:
                    self._state = _TRAILER
            elif not line:  # the blank line after the trailer fields ends the message
                if pos < n:
                    self._keep = False
                self._complete()
                return

    def _complete(self) -> None:
        """The whole answer is in: hand it over, and give the connection back when it can serve again."""
        self._cancel_timer()
        self._state = _IDLE
        resp = self._resp
        self._resp = None
        if resp is not None:
            resp._finish(None)
        if not self._uploading:
            self._release()

    def _release(self) -> None:
        if self.reading_paused:
            self.resume_reading()
        if self._keep and not self.lost and not self._buf:
            self.pool.release(self)
        else:
            self.abort()

    def _fail(self, err: BaseException) -> None:
        """Break the connection, reporting ``err`` to whoever waits for the answer."""
        self._report(err)
        self.abort()

    def _report(self, err: BaseException) -> None:
        """Hand ``err`` to whoever waits for the answer's head or body, and forget the exchange."""
        waiter = self._head_waiter
        if waiter is not None:
            self._head_waiter = None
            if not waiter.done():
                waiter.set_exception(err)
        resp = self._resp
        if resp is not None:
            self._resp = None
            resp._finish(err)
        self._state = _IDLE

    # ------------------------------------------------------------------ driving a request
    def begin(self, deadline: float | None, timeout: float, head_only: bool) -> asyncio.Future[Response]:
        self._state = _HEAD
        self._got = 0
        self._keep = True
        self._head_only = head_only
        self._upload_exc = None
        self._timed_out = None
        self._buf.clear()
        waiter: asyncio.Future[Response] = self.loop.create_future()
        self._head_waiter = waiter
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_timeout, timeout)
        return waiter

    def _on_timeout(self, timeout: float) -> None:
        self._timer = None
        if self._state != _IDLE or self._uploading:
            self._timed_out = timeout
            self.abort()

    def _cancel_timer(self) -> None:
        timer = self._timer
        if timer is not None:
            self._timer = None
            timer.cancel()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    async def drain(self) -> None:
        if self.lost:
            raise ConnectionResetError("connection lost while sending")
        if self._write_paused:
            drain = self.loop.create_future()
            self._drain = drain
            await drain

    async def upload(self, body: AsyncIterable[bytes], size: int | None) -> None:
        """Send a streamed body (chunked when ``size`` is unknown); runs beside the answer's reading."""
        self._uploading = True
        sent = 0
        try:
            async for chunk in body:
                if self.lost:
                    return
                if not chunk:
                    continue
                sent += len(chunk)
                if size is None:
                    self.write(b"%x\r\n" % len(chunk))
                    self.write(chunk)
                    self.write(b"\r\n")
                else:
                    if sent > size:
                        raise RequestBodyError(f"request body is longer than its announced {size} bytes")
                    self.write(chunk)
                await self.drain()
            if self.lost:
                return
            if size is None:
                self.write(b"0\r\n\r\n")
            elif sent != size:
                raise RequestBodyError(f"request body ended after {sent} of its announced {size} bytes")
        except BaseException as exc:
            if not self.lost:
                self._upload_exc = exc if not isinstance(exc, asyncio.CancelledError) else None
                self.abort()
            self._uploading = False
            if not isinstance(exc, Exception | asyncio.CancelledError):
                raise
            return
        finally:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        self._uploading = False
        if self._state == _IDLE and self._resp is None and self._head_waiter is None:
            self._release()  # the answer finished before the upload did

    def abort(self) -> None:
        """Drop the connection at once (idempotent)."""
        self._keep = False
        if self.transport is not None and not self.lost:
            self.transport.abort()

    def usable(self, now: float, keepalive: float) -> bool:
        return (
            not self.lost
            and self.transport is not None
            and not self.transport.is_closing()
            and now - self.idle_since < keepalive
        )


class _HostPool:
    """Connections to one ``scheme://host:port``: idle ones (most recent last), a limit, and waiters."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        scheme: str,
        host: str,
        port: int,
        host_header: str,
        limit: int,
        keepalive: float,
    ) -> None:
        self.loop = loop
        self.scheme = scheme
        self.host = host
        self.port = port
        self.host_header = host_header
        self.limit = limit
        self.keepalive = keepalive
        self.idle: list[_Conn] = []
        self.all: set[_Conn] = set()
        self.count = 0
        self.waiters: collections.deque[asyncio.Future[_Conn | None]] = collections.deque()
        self.closed = False

    async def acquire(self, deadline: float | None, fresh: bool) -> _Conn:
        if self.closed:
            raise RuntimeError("HTTP client is closed")
        idle = self.idle
        if idle and not fresh:
            now = self.loop.time()
            while idle:
                conn = idle.pop()
                if conn.usable(now, self.keepalive):
                    conn.reused = True
                    return conn
                conn.abort()
        if self.count >= self.limit:
            waiter: asyncio.Future[_Conn | None] = self.loop.create_future()
            self.waiters.append(waiter)
            try:
                got = await _until(waiter, deadline, self.loop)
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    handed = waiter.result()
                    if handed is not None:
                        self.release(handed)
                    else:
                        self._slot_freed()
                raise
            if got is not None:
                if got.usable(self.loop.time(), self.keepalive) and not fresh:
                    got.reused = True
                    return got
                got.abort()
                self._drop_count(got)  # its slot passes to us
        self.count += 1
        try:
            return await _until(self._connect(), deadline, self.loop)
        except BaseException:
            self.count -= 1
            self._slot_freed()
            raise

    async def _connect(self) -> _Conn:
        ctx = ssl.create_default_context() if self.scheme == "https" else None
        try:
            _, proto = await self.loop.create_connection(
                lambda: _Conn(self),
                self.host,
                self.port,
                ssl=ctx,
                server_hostname=self.host if ctx else None,
            )
        except OSError as err:
            raise ConnectionFailed(
                f"cannot connect to {self.host}:{self.port}: {_describe(err)}", err, reused=False
            ) from err
        conn = proto
        assert isinstance(conn, _Conn)
        if self.closed:
            conn.abort()
            raise RuntimeError("HTTP client is closed")
        self.all.add(conn)
        return conn

    def release(self, conn: _Conn) -> None:
        """Take ``conn`` back after a complete exchange: hand it to a waiter or keep it idle."""
        conn.reused = False
        conn.idle_since = self.loop.time()
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if self.closed:
            conn.abort()
            return
        self.idle.append(conn)

    def forget(self, conn: _Conn) -> None:
        """Account for a connection that is gone."""
        self.all.discard(conn)
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)
        if conn._counted:
            self._drop_count(conn)
            self._slot_freed()

    def _drop_count(self, conn: _Conn) -> None:
        if conn._counted:
            conn._counted = False
            self.count -= 1

    def _slot_freed(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        self.closed = True
        for conn in list(self.all):
            conn.abort()
        self.idle.clear()
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeError("HTTP client is closed"))


async def _until(aw: Any, deadline: float | None, loop: asyncio.AbstractEventLoop) -> Any:
    if deadline is None:
        return await aw
    left = deadline - loop.time()
    try:
        return await asyncio.wait_for(aw, max(left, 0.0))
    except asyncio.TimeoutError as err:
        raise TimeoutError("no connection within the deadline") from err


@functools.lru_cache(maxsize=256)
def _origin(origin: str) -> tuple[str, str, int, str]:
    """Split ``scheme://host[:port]`` into scheme, host, port and the ``Host`` field."""
    scheme, sep, netloc = origin.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS or not netloc or "@" in netloc:
        raise ValueError(f"unsupported URL origin {origin!r} (want http://host[:port] or https://...)")
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = netloc.partition(":")
    try:
        port = int(port_text) if port_text else _DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError(f"bad port in URL origin {origin!r}") from None
    return scheme, host, port, netloc


def split_url(url: str) -> tuple[str, str]:
    """Split a URL into its origin and its request target (path and query, at least ``/``)."""
    start = url.find("://")
    slash = url.find("/", start + 3 if start >= 0 else 0)
    if slash < 0:
        return url, "/"
    return url[:slash], url[slash:]


class HTTPClient:
    """A pool of keep-alive HTTP/1.1 connections per host; call :meth:`close` when done.

    :param limit_per_host: most connections open to one host at a time (more requests wait)
    :param keepalive: seconds an idle connection is kept for reuse
    """

    def __init__(self, *, limit_per_host: int = 64, keepalive: float = 30.0) -> None:
        if limit_per_host < 1:
            raise ValueError(f"limit_per_host must be at least 1, got {limit_per_host}")
        self.limit_per_host = limit_per_host
        self.keepalive = keepalive
        self._pools: dict[str, _HostPool] = {}
        self._closed = False

    def _pool(self, origin: str) -> _HostPool:
        pool = self._pools.get(origin)
        if pool is None:
            if self._closed:
                raise RuntimeError("HTTP client is closed")
            scheme, host, port, host_header = _origin(origin)
            pool = _HostPool(
                asyncio.get_running_loop(),
                scheme,
                host,
                port,
                host_header,
                self.limit_per_host,
                self.keepalive,
            )
            self._pools[origin] = pool
        return pool

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | bytearray | memoryview | AsyncIterable[bytes] | None = None,
        size: int | None = None,
        headers: str = "",
        timeout: float | None = None,
        fresh: bool = False,
    ) -> Response:
        """Send one request and return the answer once its head is in (the body follows).

        :param url: an already escaped absolute URL
        :param body: bytes, an async iterable of chunks (sent as it is read, alongside the answer),
            or ``None`` (no body; a ``PUT`` then says ``Content-Length: 0``)
        :param size: the length of a streamed body (``None``: chunked transfer encoding)
        :param headers: extra header lines, each ending with ``\\r\\n``
        :param timeout: seconds for the whole exchange, answer body included (``None``: no limit)
        :param fresh: open a new connection instead of reusing an idle one
        :raises ConnectionFailed: nothing of the answer arrived (safe to re-send)
        :raises ProtocolError: a bad or cut answer head
        :raises TimeoutError: the deadline passed
        """
        origin, target = split_url(url)
        pool = self._pools.get(origin) or self._pool(origin)
        loop = pool.loop
        deadline = None if timeout is None else loop.time() + timeout
        conn = await pool.acquire(deadline, fresh)
        upload: asyncio.Task[None] | None = None
        try:
            head = f"{method} {target} HTTP/1.1\r\nHost: {pool.host_header}\r\n{headers}"
            waiter = conn.begin(deadline, timeout or 0.0, method == "HEAD")
            if body is None:
                if method in ("PUT", "POST", "PATCH"):
                    head += "Content-Length: 0\r\n"
                conn.write((head + "\r\n").encode())
            elif isinstance(body, bytes | bytearray | memoryview):
                n = len(body)
                raw = f"{head}Content-Length: {n}\r\n\r\n".encode()
                if n <= _ONE_WRITE:
                    conn.write(raw + body)
                else:
                    conn.write(raw)
                    conn.write(body)
            else:
                if size is None:
                    head += "Transfer-Encoding: chunked\r\n"
                else:
                    head += f"Content-Length: {size}\r\n"
                conn.write((head + "\r\n").encode())
                upload = loop.create_task(conn.upload(body, size))
            resp = await waiter
        except BaseException:
            conn.abort()
            if upload is not None and not upload.done():
                upload.cancel()
            raise
        resp._upload = upload
        return resp

    async def close(self) -> None:
        """Close every connection; requests still running fail."""
        self._closed = True
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            pool.close()
        await asyncio.sleep(0)  # let the transports run their connection_lost callbacks
