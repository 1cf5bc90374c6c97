"""One worker process: accept connections on the shared socket, one thread per connection.

Threads keep the per-request path short (blocking ``recv``/``send``, no event-loop hops) and let a
slow or blocking transform hold up only its own connection. Several workers share the listening
socket, so CPU-bound transforms use every core.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import struct
import threading
import time
from typing import TYPE_CHECKING

from airflow_ais_etl.runtime.handlers import App, StreamAborted
from airflow_ais_etl.runtime.http11 import ClientGone, Connection, HttpError

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable
    from types import FrameType

    from airflow_ais_etl.runtime.balance import LoadBoard

DEFER_LIMIT = 5
DEFER_SECONDS = 0.002
IDLE_TIMEOUT_SECONDS = 120
SEND_TIMEOUT_SECONDS = 300


class ConnectionRegistry:
    """Track a worker's connections so a graceful stop can close the idle ones and wait for the rest."""

    def __init__(self, on_count: Callable[[int], None] | None = None) -> None:
        self._on_count = on_count
        self._lock = threading.Lock()
        self._idle: dict[Connection, bool] = {}
        self._empty = threading.Condition(self._lock)
        self.stopping = False

    def add(self, conn: Connection) -> bool:
        """Register a new connection; False once stopping began."""
        with self._lock:
            if self.stopping:
                return False
            self._idle[conn] = True
            if self._on_count is not None:
                self._on_count(len(self._idle))
            return True

    def mark_busy(self, conn: Connection) -> None:
        """Record that a request arrived; during a stop the answer will say ``Connection: close``."""
        with self._lock:
            self._idle[conn] = False
            if self.stopping:
                conn.close_after = True

    def mark_idle(self, conn: Connection) -> bool:
        """Record that the connection waits for its next request; False if it should close instead."""
        with self._lock:
            if self.stopping:
                return False
            self._idle[conn] = True
            return True

    def remove(self, conn: Connection) -> None:
        """Forget a closed connection."""
        with self._lock:
            self._idle.pop(conn, None)
            if self._on_count is not None:
                self._on_count(len(self._idle))
            if not self._idle:
                self._empty.notify_all()

    def stop(self) -> None:
        """Stop: wake idle connections (read side shut, so they close) and mark busy ones to close."""
        with self._lock:
            self.stopping = True
            for conn, idle in self._idle.items():
                if idle:
                    with contextlib.suppress(OSError):
                        conn.sock.shutdown(socket.SHUT_RD)
                else:
                    conn.close_after = True

    def wait_empty(self, timeout: float) -> bool:
        """Wait until every connection closed; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._idle:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._empty.wait(left)
            return True


def serve_connection(
    app: App, sock: socket.socket, registry: ConnectionRegistry, log: logging.Logger
) -> None:
    """Serve requests on one connection until it closes."""
    conn = Connection(sock)
    if not registry.add(conn):
        conn.close()
        return
    try:
        while conn.wait_head():
            registry.mark_busy(conn)
            try:
                req = conn.read_request()
            except HttpError as exc:
                log.error("bad request from %s: %d %s", _peer(sock), exc.status, exc.message)
                conn.close_after = True
                _send_error(conn, exc.status, exc.message)
                return
            if not req.keep_alive:
                conn.close_after = True
            conn.head_only = req.method == "HEAD"
            conn.announce_keep_alive = req.keep_alive and req.version == "HTTP/1.0"
            try:
                app.handle(conn, req)
            except (ClientGone, StreamAborted):
                return
            except HttpError as exc:  # malformed body discovered while transforming
                log.error("%s %s: bad request body: %s", req.method, req.path, exc.message)
                if conn.response_started:
                    conn.abort()
                else:
                    conn.close_after = True
                    _send_error(conn, exc.status, exc.message)
                return
            except Exception as exc:
                log.error("%s %s: internal error: %r", req.method, req.path, exc, exc_info=exc)
                if conn.response_started:
                    conn.abort()
                else:
                    conn.close_after = True
                    _send_error(conn, 500, f"internal error: {exc!r}")
                return
            if conn.close_after or not req.body.drain():
                return
            conn.response_started = False
            if not registry.mark_idle(conn):
                return
    finally:
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
    """Blocking mode, no Nagle delay, and kernel-side timeouts for idle or stuck peers."""
    sock.setblocking(True)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for opt, seconds in (
        (socket.SO_RCVTIMEO, IDLE_TIMEOUT_SECONDS),
        (socket.SO_SNDTIMEO, SEND_TIMEOUT_SECONDS),
    ):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, opt, struct.pack("ll", seconds, 0))


def run_worker(
    lsock: socket.socket,
    app: App,
    grace_seconds: float,
    log: logging.Logger,
    board: LoadBoard | None = None,
    slot: int = 0,
) -> int:
    """Accept and serve until SIGTERM/SIGINT, then finish in-flight requests; return the exit code.

    With a ``board``, a worker that holds more connections than another one waits up to
    ``DEFER_LIMIT`` polls before accepting, so a less loaded worker gets the connection first.
    """
    stop = threading.Event()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    on_count = (lambda n: board.set(slot, n)) if board is not None else None
    registry = ConnectionRegistry(on_count)
    deferred = 0
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    try:
        while not stop.is_set():
            for key, _ in sel.select():
                if key.fileobj is lsock:
                    if board is not None and deferred < DEFER_LIMIT and board.should_defer(slot):
                        deferred += 1
                        time.sleep(DEFER_SECONDS)
                        continue
                    deferred = 0
                    _accept(lsock, app, registry, log)
                else:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 512)
    finally:
        sel.close()
        lsock.close()
    registry.stop()
    if not registry.wait_empty(grace_seconds):
        log.warning("grace period of %.1fs over with requests still in flight; exiting", grace_seconds)
    return 0


def _accept(lsock: socket.socket, app: App, registry: ConnectionRegistry, log: logging.Logger) -> None:
    try:
        sock, _ = lsock.accept()
    except (BlockingIOError, InterruptedError, ConnectionAbortedError):
        return  # another worker took it
    except OSError as exc:  # e.g. out of file descriptors: back off briefly
        log.error("accept failed: %s", exc)
        time.sleep(0.05)
        return
    tune_accepted(sock)
    threading.Thread(target=serve_connection, args=(app, sock, registry, log), daemon=True).start()
