"""Serving a connection outside the event loop: answering requests, connection threads, the registry.

A request the worker's loop cannot answer inline (streamed or large bodies, callbacks, io commands)
moves here with its connection. The registry knows which connections a thread holds, so a stopping
worker can ask them to close after their current answer and wait for them.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from typing import TYPE_CHECKING

from airflow_ais_etl.runtime.handlers import App, StreamAborted
from airflow_ais_etl.runtime.httpserver import ClientGone, Connection, HttpError

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from airflow_ais_etl.runtime.httpserver import Request

IDLE_TIMEOUT_SECONDS = 120
SEND_TIMEOUT_SECONDS = 300


class ConnectionRegistry:
    """Track a worker's connections and which of them a thread serves, for counts and graceful stops."""

    def __init__(self, on_count: Callable[[int], None] | None = None) -> None:
        self._on_count = on_count
        self._lock = threading.Lock()
        self._threaded: dict[Connection, bool] = {}
        self._empty = threading.Condition(self._lock)
        self.stopping = False

    def add(self, conn: Connection) -> None:
        """Register a new connection (served by the event loop)."""
        with self._lock:
            self._threaded[conn] = False
            if self._on_count is not None:
                self._on_count(len(self._threaded))

    def to_thread(self, conn: Connection) -> None:
        """Record that a thread serves ``conn`` now; during a stop its answer says ``Connection: close``."""
        with self._lock:
            self._threaded[conn] = True
            if self.stopping:
                conn.close_after = True

    def mark_busy(self, conn: Connection) -> None:
        """Record that a thread starts another request on ``conn``."""
        if self.stopping:
            conn.close_after = True

    def to_loop(self, conn: Connection) -> bool:
        """Record that the event loop serves ``conn`` again; False if it should close instead."""
        with self._lock:
            if self.stopping:
                return False
            self._threaded[conn] = False
            return True

    def remove(self, conn: Connection) -> None:
        """Forget a closed connection."""
        with self._lock:
            self._threaded.pop(conn, None)
            if self._on_count is not None:
                self._on_count(len(self._threaded))
            if not self._threaded:
                self._empty.notify_all()

    def stop(self) -> None:
        """Stop: connections busy in a thread answer with ``Connection: close``."""
        with self._lock:
            self.stopping = True
            for conn, threaded in self._threaded.items():
                if threaded:
                    conn.close_after = True

    def wait_empty(self, timeout: float) -> bool:
        """Wait until every connection closed; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._threaded:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._empty.wait(left)
            return True


def answer(app: App, conn: Connection, req: Request, log: logging.Logger) -> bool:
    """Answer one parsed request; True if the connection can carry the next one."""
    if not req.keep_alive:
        conn.close_after = True
    conn.head_only = req.method == "HEAD"
    conn.announce_keep_alive = req.keep_alive and req.version == "HTTP/1.0"
    try:
        app.handle(conn, req)
    except (ClientGone, StreamAborted):
        return False
    except HttpError as exc:  # malformed body discovered while transforming
        log.error("%s %s: bad request body: %s", req.method, req.path, exc.message)
        if conn.response_started:
            conn.abort()
        else:
            conn.close_after = True
            _send_error(conn, exc.status, exc.message)
        return False
    except Exception as exc:
        log.error("%s %s: internal error: %r", req.method, req.path, exc, exc_info=exc)
        if conn.response_started:
            conn.abort()
        else:
            conn.close_after = True
            _send_error(conn, 500, f"internal error: {exc!r}")
        return False
    if conn.close_after or not req.body.drain():
        return False
    conn.response_started = False
    return True


def read_head(conn: Connection, log: logging.Logger) -> Request | None:
    """Parse the buffered request head; on a malformed one answer it, mark the connection to close, return None."""
    try:
        return conn.read_request()
    except HttpError as exc:
        log.error("bad request from %s: %d %s", _peer(conn.sock), exc.status, exc.message)
        conn.close_after = True
        _send_error(conn, exc.status, exc.message)
        return None


def serve_in_thread(
    app: App,
    conn: Connection,
    req: Request | None,
    registry: ConnectionRegistry,
    log: logging.Logger,
    give_back: Callable[[Connection], None],
) -> None:
    """Serve ``req`` and any requests already buffered behind it, then give the idle connection back."""
    keep = False
    try:
        while True:
            if req is None:
                while conn.buf[:2] == b"\r\n":
                    del conn.buf[:2]
                if not conn.buf:
                    keep = registry.to_loop(conn)
                    return
                registry.mark_busy(conn)
                req = read_head(conn, log)
                if req is None:
                    return
            if not answer(app, conn, req, log):
                return
            req = None
    finally:
        if keep:
            give_back(conn)
        else:
            conn.close()
            registry.remove(conn)


def _send_error(conn: Connection, status: int, message: str) -> None:
    with contextlib.suppress(ClientGone):
        conn.send_text(status, message + "\n")


def _peer(sock: socket.socket) -> str:
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return "?"
    return f"{host}:{port}"


def tune_accepted(sock: socket.socket) -> None:
    """Blocking mode, no Nagle delay, and kernel-side timeouts for idle or stuck peers.

    The socket stays blocking for connection threads; the event loop passes ``MSG_DONTWAIT``.
    """
    sock.setblocking(True)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for opt, seconds in (
        (socket.SO_RCVTIMEO, IDLE_TIMEOUT_SECONDS),
        (socket.SO_SNDTIMEO, SEND_TIMEOUT_SECONDS),
    ):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, opt, struct.pack("ll", seconds, 0))
