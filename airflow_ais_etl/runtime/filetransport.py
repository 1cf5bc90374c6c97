"""The pod side of the file transport (``runtime.filewire``): the engine names objects, the pod does the rest.

The supervisor binds the socket (at the path the local backend gives in ``AIS_ETL_FILE_SOCKET``,
inside the pod's private 0700 directory, the socket itself 0600) before it forks; every worker
accepts on it in a thread of its own and serves each engine connection in a thread: a message's
objects run one after the other: open the source (``runtime.bucketfiles``), run
:meth:`App.transform_file` (the same transform calls as an HTTP request) into a temp file of the
destination, give the complete result its name, and answer ok + length, or the status and message
HTTP would have carried. The engine holds several connections per pod, so objects run in parallel
across threads and worker processes. Only a peer of this process's own user may talk to it
(``SO_PEERCRED``); such a peer could open these files itself.

A result gets its name only while the engine still waits for more: once the engine has half-closed
(or closed) the connection, as an ending job does, the pod names nothing more once it notices (it
asks at most every :data:`HANGUP_CHECK_SECONDS`): it discards what it was writing, runs none of the
message's other objects, and answers them "not run" at once. So the answer lists every result the
pod named, the engine counts and notes each, and nothing appears in the destination after the job
ended.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import threading
import time
from typing import TYPE_CHECKING

from airflow_ais_etl.runtime.bucketfiles import StoreError, create_temp, open_in
from airflow_ais_etl.runtime.filewire import (
    MAX_MESSAGE,
    NOT_RUN,
    STORE_FAILED,
    Buckets,
    FileWireError,
    decode_request,
    encode_answer,
    encode_hello,
    short_path,
)
from airflow_ais_etl.runtime.timebudget import TimeBudget

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

    from airflow_ais_etl.runtime.handlers import App

__all__ = ["BUDGET_SECONDS", "listen", "serve_files"]

BUDGET_SECONDS = 0.05
"""A message's transform time after which its objects left are answered NOT_RUN: the engine sends them
one per message, so a slow transform runs on every connection (thread, worker) in parallel."""

HANGUP_CHECK_SECONDS = 0.002
"""How long a result may be named after the engine last proved it still waits: one that the pod names
after a half-close is still in the answer the engine waits for while its job ends (it is counted and
noted); a message given up on (closed) is long past its objects' time, so its next result checks."""

_CRED = struct.Struct("3i")


def listen(path: str) -> socket.socket:
    """Bind the file socket at ``path`` (0600; a stale one from a killed pod is replaced)."""
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


def serve_files(
    lsock: socket.socket, app: App, log: logging.Logger, worker: int = 0, workers: int = 1
) -> threading.Thread:
    """Accept engine connections on ``lsock`` in a daemon thread of worker ``worker`` (of ``workers``); return it."""
    hello = encode_hello(worker, workers)
    thread = threading.Thread(
        target=_accept_loop, args=(lsock, app, log, hello), name="file-accept", daemon=True
    )
    thread.start()
    return thread


def _accept_loop(lsock: socket.socket, app: App, log: logging.Logger, hello: bytes) -> None:
    lsock.setblocking(True)
    while True:
        try:
            conn, _ = lsock.accept()
        except OSError:
            return  # closed: the worker stops
        if not _same_user(conn):
            log.warning("file socket: refused a connection of another user")
            conn.close()
            continue
        try:
            conn.sendall(hello)  # which worker runs this connection's messages (runtime.filewire)
        except OSError:
            conn.close()
            continue
        threading.Thread(target=_serve, args=(conn, app, log), name="file-conn", daemon=True).start()


def _same_user(conn: socket.socket) -> bool:
    _pid, uid, _gid = _CRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size))
    return uid == os.getuid()


def _serve(conn: socket.socket, app: App, log: logging.Logger) -> None:
    """Answer one engine connection's messages until it closes (or sends something malformed)."""
    engine_gone = _hangup_watch(conn)
    with conn:
        while True:
            try:
                data, _, flags, _ = conn.recvmsg(MAX_MESSAGE)
            except OSError:
                return
            if not data:
                return  # the engine closed the connection
            try:
                if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                    raise FileWireError("message cut")
                query, buckets, objects = decode_request(data)
            except FileWireError as err:
                log.error("file socket: %s; closing the connection", err)
                return
            verdicts = _run(app, query, buckets, objects, engine_gone)
            try:
                conn.sendall(encode_answer(verdicts))
            except OSError:
                return


def _hangup_watch(conn: socket.socket) -> Callable[[], bool]:
    """Return a check whether the engine hung up on ``conn``, asking the kernel at most every
    :data:`HANGUP_CHECK_SECONDS` (a ``poll`` per small object would be a tenth of its system calls)."""
    hangup = select.poll()
    hangup.register(conn, select.POLLIN | select.POLLHUP | select.POLLERR)
    asked = -HANGUP_CHECK_SECONDS

    def engine_gone() -> bool:
        nonlocal asked
        now = time.monotonic()
        if now - asked < HANGUP_CHECK_SECONDS:
            return False
        asked = now
        return bool(hangup.poll(0))

    return engine_gone


def _run(
    app: App,
    query: str,
    buckets: Buckets,
    objects: list[tuple[str, str, str]],
    engine_gone: Callable[[], bool],
) -> list[tuple[int, int | str]]:
    """Transform each object of a message in order; leave the rest NOT_RUN once its time is up."""
    clock = TimeBudget(BUDGET_SECONDS)
    out: list[tuple[int, int | str]] = []
    batched = len(objects) > 1
    held_back = False  # the engine hung up: this object and the rest are not run
    for path, src_name, dst_name in objects:
        if held_back or (out and clock.spent()):
            out.append((NOT_RUN, 0))
        else:
            verdict = _one(app, query, buckets, path, src_name, dst_name, batched, engine_gone)
            held_back = verdict[0] == NOT_RUN
            out.append(verdict)
    return out


def _one(
    app: App,
    query: str,
    buckets: Buckets,
    path: str,
    src_name: str,
    dst_name: str,
    batched: bool,
    engine_gone: Callable[[], bool],
) -> tuple[int, int | str]:
    """Read, transform and store one object; return its verdict (``runtime.filewire``)."""
    try:
        src, size = open_in(f"file://{buckets.src}", buckets.src, buckets.src_real, src_name)
    except StoreError as err:  # missing (vanished since the listing), or a link out of the bucket
        return STORE_FAILED, str(err)
    try:
        temp = create_temp(
            buckets.dst_url,
            dst_name,
            f"{buckets.dst}/{dst_name}",
            anonymous=True,
            fsync=buckets.fsync,
            umask=buckets.umask,
        )
    except StoreError as err:
        os.close(src)
        return STORE_FAILED, str(err)
    try:
        verdict = app.transform_file(path, query, src, temp.fd, size=size, batched=batched)
    except BaseException:
        temp.discard()
        raise
    finally:
        os.close(src)
    if verdict[0] != 200:
        temp.discard()
        return verdict
    if engine_gone():  # the job ended (or is ending): nothing appears after it
        temp.discard()
        return NOT_RUN, 0
    try:
        temp.commit()
    except StoreError as err:
        return STORE_FAILED, str(err)
    return verdict
