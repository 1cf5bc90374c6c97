"""Keep-alive connections to the target (callback GETs, direct PUTs), shared by a process's threads.

The pod serves most requests in a thread that lives for one request (``runtime.server``), so a
connection kept per thread would die with it and every object would pay a TCP handshake and, on
the target gateway, a new server thread. The pool keeps idle connections per host for the whole
process instead: a thread takes one, does one exchange and gives it back only when the answer was
read to its end. A connection the server closed while idle is seen (a zero-timeout poll finds its
end of file readable) and dropped before use; one that dies in the instant between that check and the
request is the caller's to retry, once (:func:`resendable`).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import select
import socket
import threading
from urllib.parse import urlsplit

__all__ = [
    "IDLE_PER_HOST",
    "ConnectionPool",
    "HostKey",
    "NoAnswer",
    "await_answer",
    "exchange",
    "host_key",
    "resendable",
    "shared_pool",
]

IDLE_PER_HOST = 32
"""Idle connections kept per host; more are closed when given back (a burst leaves no crowd behind)."""

HostKey = tuple[str, str, int]
"""``(scheme, host, port)`` of a URL."""


def host_key(url: str) -> HostKey:
    """Return the pool key of ``url``: its scheme, host and port (the scheme's default if none)."""
    parts = urlsplit(url)
    scheme = parts.scheme or "http"
    return (scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80))


class NoAnswer(ConnectionResetError):
    """The server ended the connection before the first byte of its answer."""


def await_answer(conn: http.client.HTTPConnection) -> None:
    """Wait for the first byte of the answer without consuming it (what ``getresponse`` reads next).

    :raises NoAnswer: the connection ended first (``ConnectionResetError`` if it was reset), so
        nothing of the answer was read and the request may be sent again
    :raises TimeoutError: no answer within the connection's timeout
    """
    sock = conn.sock
    if sock is None:
        raise NoAnswer("the connection is closed")
    try:
        first = sock.recv(1, socket.MSG_PEEK)
    except ValueError:
        return  # a TLS socket cannot peek: its failures count as answers begun (never resent)
    if not first:
        raise NoAnswer("the server closed the connection without answering")


def resendable(exc: BaseException, *, reused: bool, answer_started: bool) -> bool:
    """Tell whether a failed exchange may be sent again on a fresh connection.

    Only a reused connection (the server may have closed it while idle), only when nothing of the
    answer was read (:func:`await_answer` returned before the failure), and only for a failure of
    the connection itself, not a timeout: the server never got the request or never answered it.
    """
    if not reused or answer_started or isinstance(exc, TimeoutError):
        return False
    return isinstance(exc, (BrokenPipeError, ConnectionResetError, ConnectionAbortedError))


def _still_open(conn: http.client.HTTPConnection) -> bool:
    """True when the idle connection has nothing to read: no end of file, no stray bytes, no error."""
    sock = conn.sock
    if sock is None:
        return False
    poller = select.poll()
    try:
        poller.register(sock, select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def exchange(
    pool: ConnectionPool, key: HostKey, method: str, target: str, body: bytes | None, headers: dict[str, str]
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Send one request with a whole body (or none) on a pooled connection; return it and the answer's head.

    A reused connection that fails before any of the answer came is replaced by a new one and the
    request sent again, once. Give the connection back with :meth:`ConnectionPool.give_back` (same ``key``).

    :raises OSError: or ``http.client.HTTPException``: no answer (the connection is closed)
    """
    retried = False
    while True:
        conn, reused = pool.take(key, fresh=retried)
        answer_started = False
        try:
            conn.request(method, target, body=body, headers=headers)
            await_answer(conn)
            answer_started = True
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            if retried or not resendable(exc, reused=reused, answer_started=answer_started):
                raise
            retried = True


class ConnectionPool:
    """Idle keep-alive ``http.client`` connections per host, for every thread of one process."""

    def __init__(self, timeout: float, idle_per_host: int = IDLE_PER_HOST) -> None:
        self.timeout = timeout
        self.idle_per_host = idle_per_host
        self._idle: dict[HostKey, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def take(self, key: HostKey, *, fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        """Return an open connection to ``key`` and whether it carried exchanges before.

        :param fresh: make a new connection (a retry after a reused one failed)
        :raises OSError: a new connection could not be made
        """
        while True:
            conn = None if fresh else self._pop(key)
            if conn is None:
                return self._connect(key), False
            if _still_open(conn):
                return conn, True
            conn.close()

    def give_back(
        self, key: HostKey, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse
    ) -> None:
        """Keep ``conn`` (taken for ``key``) for the next exchange if ``resp`` was read to its end and may be followed."""
        if not resp.isclosed() or resp.will_close or conn.sock is None:
            conn.close()
            return
        with self._lock:
            self._forget_other_process()
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.idle_per_host:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _pop(self, key: HostKey) -> http.client.HTTPConnection | None:
        with self._lock:
            self._forget_other_process()
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def _forget_other_process(self) -> None:
        """After a fork the parent's sockets are not ours to use: start empty (never close theirs)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._idle = {}

    def _connect(self, key: HostKey) -> http.client.HTTPConnection:
        scheme, host, port = key
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = cls(host, port, timeout=self.timeout)
        try:
            conn.connect()
            with contextlib.suppress(OSError):
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            conn.close()
            raise
        return conn


_shared: dict[float, ConnectionPool] = {}
_shared_lock = threading.Lock()


def shared_pool(timeout: float) -> ConnectionPool:
    """Return the process's pool for exchanges with ``timeout`` (one per timeout value)."""
    with _shared_lock:
        pool = _shared.get(timeout)
        if pool is None:
            pool = _shared[timeout] = ConnectionPool(timeout)
        return pool
