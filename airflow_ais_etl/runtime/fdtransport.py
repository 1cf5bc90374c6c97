"""The pod side of the fd transport (``runtime.fdwire``): objects arrive as descriptors on a Unix socket.

The supervisor binds the socket (at the path the local backend gives in ``AIS_ETL_FD_SOCKET``,
inside the pod's private 0700 directory, the socket itself 0600) before it forks; every worker
accepts on it in a thread of its own and serves each engine connection in a thread: a message's
objects run one after the other through :meth:`App.transform_file` (the same transform calls as an
HTTP request), each answered ok + length or with the status and message HTTP would have carried.
The engine holds several connections per pod, so objects run in parallel across threads and
worker processes. Only a peer of this process's own user may talk to it (``SO_PEERCRED``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from typing import TYPE_CHECKING

from airflow_ais_etl.runtime.fdwire import (
    MAX_MESSAGE,
    MAX_OBJECTS,
    NOT_RUN,
    FdFormatError,
    decode_request,
    encode_answer,
    short_path,
)

if TYPE_CHECKING:
    import logging

    from airflow_ais_etl.runtime.handlers import App

__all__ = ["BUDGET_SECONDS", "listen", "serve_fds"]

BUDGET_SECONDS = 0.05
"""A message's transform time after which its objects left are answered NOT_RUN: the engine sends them
one per message, so a slow transform runs on every connection (thread, worker) in parallel."""

_CRED = struct.Struct("3i")


def listen(path: str) -> socket.socket:
    """Bind the fd socket at ``path`` (0600; a stale one from a killed pod is replaced)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    old = os.umask(0o177)  # created 0600 from the start (still single-threaded here)
    try:
        with short_path(path) as name:
            sock.bind(name)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old)
    sock.listen(128)
    return sock


def serve_fds(lsock: socket.socket, app: App, log: logging.Logger) -> threading.Thread:
    """Accept engine connections on ``lsock`` in a daemon thread of this worker; return it."""
    thread = threading.Thread(target=_accept_loop, args=(lsock, app, log), name="fd-accept", daemon=True)
    thread.start()
    return thread


def _accept_loop(lsock: socket.socket, app: App, log: logging.Logger) -> None:
    lsock.setblocking(True)
    while True:
        try:
            conn, _ = lsock.accept()
        except OSError:
            return  # closed: the worker stops
        if not _same_user(conn):
            log.warning("fd socket: refused a connection of another user")
            conn.close()
            continue
        threading.Thread(target=_serve, args=(conn, app, log), name="fd-conn", daemon=True).start()


def _same_user(conn: socket.socket) -> bool:
    _pid, uid, _gid = _CRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size))
    return uid == os.getuid()


def _serve(conn: socket.socket, app: App, log: logging.Logger) -> None:
    """Answer one engine connection's messages until it closes (or sends something malformed)."""
    with conn:
        while True:
            try:
                data, fds, flags, _ = socket.recv_fds(
                    conn, MAX_MESSAGE, 2 * MAX_OBJECTS, socket.MSG_CMSG_CLOEXEC
                )
            except OSError:
                return
            if not data and not fds:
                return  # the engine closed the connection
            try:
                if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                    raise FdFormatError("message or its descriptors were cut")
                query, paths = decode_request(data, len(fds))
                verdicts = _run(app, query, paths, fds)
            except FdFormatError as err:
                log.error("fd socket: %s; closing the connection", err)
                return
            finally:
                for fd in fds:
                    if fd >= 0:
                        os.close(fd)
            try:
                conn.sendall(encode_answer(verdicts))
            except OSError:
                return


def _run(app: App, query: str, paths: list[str], fds: list[int]) -> list[tuple[int, int | str]]:
    """Transform each object of a message in order; leave the rest NOT_RUN once its time is up."""
    deadline = time.monotonic() + BUDGET_SECONDS
    out: list[tuple[int, int | str]] = []
    for i, path in enumerate(paths):
        src, dst = fds[2 * i], fds[2 * i + 1]
        if out and time.monotonic() > deadline:
            out.append((NOT_RUN, 0))
        else:
            out.append(app.transform_file(path, query, src, dst, batched=len(paths) > 1))
        for fd in (src, dst):  # closed at once: the engine may check and rename it now
            os.close(fd)
        fds[2 * i] = fds[2 * i + 1] = -1
    return out
