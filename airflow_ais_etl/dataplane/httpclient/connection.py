"""One keep-alive connection: sends one request at a time and turns the bytes of its answer into a Response."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import TYPE_CHECKING

from airflow_ais_etl.dataplane.httpclient.errors import (
    BodyError,
    ConnectionFailed,
    ProtocolError,
    RequestBodyError,
    describe,
)
from airflow_ais_etl.dataplane.httpclient.filebody import FileBody, can_sendfile, send_file
from airflow_ais_etl.dataplane.httpclient.response import Headers, Response
from airflow_ais_etl.runtime.http1 import (
    CRLF,
    LAST_CHUNK,
    EndOfMessage,
    ParseError,
    ResponseParser,
    chunk_size_line,
)
from airflow_ais_etl.runtime.http1.responses import CHUNKED_BODY, HEAD, IDLE, LENGTH, UNTIL_CLOSE

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator

    from airflow_ais_etl.dataplane.httpclient.pool import HostPool
    from airflow_ais_etl.runtime.http1 import ResponseHead


async def _no_chunks() -> AsyncIterator[bytes]:
    """Nothing (what is left of a body once ``sendfile`` sent it all)."""
    empty: tuple[bytes, ...] = ()
    for chunk in empty:
        yield chunk


class Connection(asyncio.BufferedProtocol):
    """One keep-alive connection: runs one request at a time and parses its answer as bytes arrive.

    A buffered protocol: the socket reads into its pool's buffer. A plain protocol gets each read as
    a fresh 256 KiB allocation, trimmed to size; whether glibc then moves the heap's end (``brk``,
    ``mmap``) on every read depends on what else is on the heap, and it tripled the CPU per small
    answer in some processes.
    """

    def __init__(self, pool: HostPool) -> None:
        self.pool = pool
        self.loop = pool.loop
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.reused = False
        self.idle_since = 0.0
        self.reading_paused = False
        self.counted = True
        """The pool counts this connection against its limit (until it is gone or handed over)."""
        self._parser = ResponseParser()
        self._head_waiter: asyncio.Future[Response] | None = None
        self._resp: Response | None = None
        self._got = 0
        self._keep = True
        self._head_only = False
        self._uploading = False
        self._upload_exc: BaseException | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timed_out: float | None = None
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None

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
        if self._parser.state == UNTIL_CLOSE:
            self._parser.reset()  # the end of the connection is the end of the body
            self._complete()
        return False  # let the transport close; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._cancel_timer()
        state = self._parser.state
        if self._timed_out is not None:
            err: BaseException = TimeoutError(f"no complete answer within {self._timed_out:g}s")
        elif self._upload_exc is not None:
            err = self._upload_exc
        elif state == HEAD and self._got == 0:
            err = ConnectionFailed(f"connection {describe(exc)} before any answer", exc, reused=self.reused)
        elif state == HEAD:
            err = ProtocolError(f"connection {describe(exc)} inside the response head")
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
        state = self._parser.state
        resp = self._resp
        if state == LENGTH and resp is not None and resp.content_length is not None:
            got = resp.content_length - self._parser.left
            return f"connection {describe(exc)} after {got} of {resp.content_length} bytes"
        if state == CHUNKED_BODY:
            return f"connection {describe(exc)} before the last chunk"
        return f"connection {describe(exc)} in the response body"

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.pool.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        resp = self._resp
        if resp is not None and resp.sinking and self._parser.take_body(nbytes):
            # Body bytes go from the socket's buffer straight to the response's sink, which
            # consumes them before the next read reuses the buffer: no copy into a bytes object.
            self._got += nbytes
            resp.feed(self.pool.read_buffer[:nbytes])
            return
        self._on_data(self.pool.read_buffer[:nbytes].tobytes())

    def _on_data(self, data: bytes) -> None:
        self._got += len(data)
        parser = self._parser
        if parser.state == IDLE:
            self._keep = False  # unsolicited bytes: the connection is out of step
            if self.transport is not None:
                self.transport.close()
            return
        parser.feed(data)
        resp = self._resp
        try:
            while True:
                event = parser.next_event()
                if event is None:
                    return
                if isinstance(event, bytes):
                    assert resp is not None
                    resp.feed(event)
                elif isinstance(event, EndOfMessage):
                    if parser.leftover:
                        self._keep = False  # bytes nobody asked for: never reuse this connection
                    self._complete()
                    return
                else:
                    resp = self._on_head(event)
        except ParseError as err:
            self._fail(ProtocolError(str(err)) if parser.state == HEAD else BodyError(str(err)))

    def _on_head(self, head: ResponseHead) -> Response:
        """Hand the answer to whoever waits for it; its body follows."""
        resp = Response(self.loop, head.status, head.reason, Headers(head.headers), self)
        state = self._parser.state
        if state == LENGTH and not self._head_only and head.status != 304:
            resp.content_length = self._parser.left
        if not head.keep_alive or state == UNTIL_CLOSE:
            self._keep = False
        self._resp = resp
        waiter = self._head_waiter
        self._head_waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(resp)
        return resp

    def _complete(self) -> None:
        """The whole answer is in: hand it over, and give the connection back when it can serve again."""
        self._cancel_timer()
        resp = self._resp
        self._resp = None
        if resp is not None:
            resp.finish(None)
        if not self._uploading:
            self._release()

    def _release(self) -> None:
        if self.reading_paused:
            self.resume_reading()
        if self._keep and not self.lost:  # bytes beyond the answer cleared _keep when they came
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
            resp.finish(err)
        self._parser.reset()

    # ------------------------------------------------------------------ driving a request
    def begin(self, deadline: float | None, timeout: float, head_only: bool) -> asyncio.Future[Response]:
        self._parser.expect(head_only)
        self._got = 0
        self._keep = True
        self._head_only = head_only
        self._upload_exc = None
        self._timed_out = None
        waiter: asyncio.Future[Response] = self.loop.create_future()
        self._head_waiter = waiter
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_timeout, timeout)
        return waiter

    def _on_timeout(self, timeout: float) -> None:
        self._timer = None
        if self._parser.state != IDLE or self._uploading:
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
            transport = self.transport
            if isinstance(body, FileBody) and size is not None and transport and can_sendfile(transport):
                await send_file(transport, body, size)  # the kernel moves the bytes (filebody)
                body, sent = _no_chunks(), size
            async for chunk in body:
                if self.lost:
                    return
                if not chunk:
                    continue
                sent += len(chunk)
                if size is None:
                    self.write(chunk_size_line(len(chunk)))
                    self.write(chunk)
                    self.write(CRLF)
                else:
                    if sent > size:
                        raise RequestBodyError(f"request body is longer than its announced {size} bytes")
                    self.write(chunk)
                await self.drain()
            if self.lost:
                return
            if size is None:
                self.write(LAST_CHUNK)
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
        if self._parser.state == IDLE and self._resp is None and self._head_waiter is None:
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
