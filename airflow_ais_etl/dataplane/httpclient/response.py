"""The answer to one request: status, header fields, and a body that arrives in the background."""

from __future__ import annotations

import collections
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.dataplane.httpclient.errors import BodyError

if TYPE_CHECKING:
    import asyncio
    from collections.abc import AsyncIterator, Callable

    from airflow_ais_etl.dataplane.httpclient.connection import Connection

HIGH_WATER = 1 << 20
"""Pause reading an answer once this much of its body waits unread (resume below a quarter)."""


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
        "_sink",
        "_size",
        "_sunk",
        "_unbounded",
        "_waiter",
        "content_length",
        "headers",
        "reason",
        "status",
        "upload",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, status: int, reason: str, headers: Headers, conn: Connection
    ) -> None:
        self._loop = loop
        self.status = status
        self.reason = reason
        self.headers = headers
        self.content_length: int | None = None
        self._conn: Connection | None = conn
        self._parts: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._done = False
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._unbounded = False
        self._sink: Callable[[bytes | memoryview], object] | None = None
        self._sunk = 0
        self.upload: asyncio.Task[None] | None = None
        """The task still sending a streamed request body; :meth:`close` cancels it."""

    # ------------------------------------------------------------------ fed by the connection
    @property
    def sinking(self) -> bool:
        """Tell whether body bytes go straight to a sink (:meth:`drain_into`) as they arrive."""
        return self._sink is not None

    def feed(self, data: bytes | memoryview) -> None:
        """Take the next piece of the body (from the connection); pause reading when too much waits.

        With a sink, ``data`` may be a view of the connection's read buffer: the sink consumes it now.
        """
        sink = self._sink
        if sink is not None:
            try:
                sink(data)
            except BaseException as exc:
                self._sink = None
                conn = self._conn
                self.finish(exc)
                if conn is not None:
                    conn.abort()
                if not isinstance(exc, Exception):
                    raise
                return
            self._sunk += len(data)
            return
        assert isinstance(data, bytes)
        self._parts.append(data)
        self._size += len(data)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if self._size > HIGH_WATER and not self._unbounded and self._conn is not None:
            self._conn.pause_reading()

    def finish(self, exc: BaseException | None) -> None:
        """Mark the body complete, or broken by ``exc`` (from the connection)."""
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
        if conn is not None and conn.reading_paused and self._size <= HIGH_WATER // 4:
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

    async def drain_into(self, write: Callable[[bytes | memoryview], object]) -> int:
        """Hand the whole body to ``write`` as it arrives and return its length.

        ``write`` is called in the event loop with each piece straight from the socket's read
        buffer (a view it must consume before returning, never keep): a large answer goes to its
        destination file with no copy in Python and no task switch per piece. An error of
        ``write`` or of the connection is raised here, and drops the connection.
        """
        try:
            parts = self._parts
            while parts:
                piece = parts.popleft()
                self._taken(len(piece))
                write(piece)
                self._sunk += len(piece)
            if not self._done:
                self._unbounded = True
                self._sink = write
                conn = self._conn
                if conn is not None and conn.reading_paused:
                    conn.resume_reading()
                while not self._done:
                    await self._more()
            self._sink = None
            if self._exc is not None:
                raise self._exc
            return self._sunk
        except BaseException:
            self._sink = None
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
        if self.upload is not None and not self.upload.done():
            self.upload.cancel()
        conn = self._conn
        if conn is not None and not self._done:
            conn.abort()
        if not self._done:
            self.finish(BodyError("response closed before its end"))
        self._parts.clear()
        self._size = 0
