"""Per-host pools of keep-alive connections: reuse idle ones, cap how many are open, queue the rest."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
from typing import Any

from airflow_ais_etl.dataplane.httpclient.connection import Connection
from airflow_ais_etl.dataplane.httpclient.errors import ConnectionFailed, describe

READ_BUFFER_SIZE = 256 << 10
"""Most bytes one socket read takes (asyncio's own default for plain protocols)."""


class HostPool:
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
        self.idle: list[Connection] = []
        self.all: set[Connection] = set()
        self.count = 0
        self.waiters: collections.deque[asyncio.Future[Connection | None]] = collections.deque()
        self.closed = False
        self.read_buffer = memoryview(bytearray(READ_BUFFER_SIZE))
        """Where every connection to this host receives: the loop reads into it and the connection
        copies the bytes out in the same step, so one buffer serves them all."""

    async def acquire(self, deadline: float | None, fresh: bool) -> Connection:
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
            waiter: asyncio.Future[Connection | None] = self.loop.create_future()
            self.waiters.append(waiter)
            try:
                got = await until(waiter, deadline, self.loop)
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
            return await until(self._connect(), deadline, self.loop)
        except BaseException:
            self.count -= 1
            self._slot_freed()
            raise

    async def _connect(self) -> Connection:
        ctx = ssl.create_default_context() if self.scheme == "https" else None
        try:
            _, proto = await self.loop.create_connection(
                lambda: Connection(self),
                self.host,
                self.port,
                ssl=ctx,
                server_hostname=self.host if ctx else None,
            )
        except OSError as err:
            raise ConnectionFailed(
                f"cannot connect to {self.host}:{self.port}: {describe(err)}", err, reused=False
            ) from err
        conn = proto
        assert isinstance(conn, Connection)
        if self.closed:
            conn.abort()
            raise RuntimeError("HTTP client is closed")
        self.all.add(conn)
        return conn

    def release(self, conn: Connection) -> None:
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

    def forget(self, conn: Connection) -> None:
        """Account for a connection that is gone."""
        self.all.discard(conn)
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)
        if conn.counted:
            self._drop_count(conn)
            self._slot_freed()

    def _drop_count(self, conn: Connection) -> None:
        if conn.counted:
            conn.counted = False
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


async def until(aw: Any, deadline: float | None, loop: asyncio.AbstractEventLoop) -> Any:
    """Await ``aw`` until the loop time ``deadline`` (``None``: no limit); :class:`TimeoutError` after it."""
    if deadline is None:
        return await aw
    left = deadline - loop.time()
    try:
        return await asyncio.wait_for(aw, max(left, 0.0))
    except asyncio.TimeoutError as err:
        raise TimeoutError("no connection within the deadline") from err
