"""Request bodies that are whole local files, sent with ``sendfile(2)``: no byte passes through Python.

Streaming a 64 MiB object chunk by chunk costs the engine a read into a fresh bytes object, a
thread hop and a socket write per chunk. A :class:`FileBody` on a plain TCP connection is instead
pumped by one thread: ``sendfile`` moves the bytes from the page cache to the socket inside the
kernel. The thread works on a duplicate of the socket's descriptor and waits for it with ``poll``,
so the event loop keeps reading the answer meanwhile (a streaming pod answers while it still
reads, and would deadlock with a sender that stopped reading). Elsewhere (TLS, a connection with
unsent bytes, no ``sendfile``) the body streams in chunks like any other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import select
import threading
from typing import TYPE_CHECKING

from airflow_ais_etl.dataplane.httpclient.errors import RequestBodyError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["FileBody", "can_sendfile", "send_file"]

CHUNK = 1 << 20
"""Chunk size where the body is streamed instead."""
_POLL_MS = 50
"""How often a waiting pump checks whether its request was given up."""
_PUMPS = 8
_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


class FileBody:
    """The whole file at ``path`` (``size`` bytes) as a request body, re-sendable for every attempt."""

    __slots__ = ("path", "size")

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.size = size

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        """Stream the file in chunks (the fallback), each read in a thread so the loop never waits on disk."""
        f = await asyncio.to_thread(open, self.path, "rb")
        try:
            while chunk := await asyncio.to_thread(f.read, CHUNK):
                yield chunk
        finally:
            f.close()


def can_sendfile(transport: asyncio.Transport) -> bool:
    """Tell whether ``transport`` is a plain socket with nothing queued, so a pump may write to it."""
    return (
        hasattr(os, "sendfile")
        and transport.get_extra_info("sslcontext") is None
        and transport.get_extra_info("socket") is not None
        and transport.get_write_buffer_size() == 0
        and not transport.is_closing()
    )


async def send_file(transport: asyncio.Transport, body: FileBody, size: int) -> None:
    """Send ``size`` bytes of ``body`` on ``transport``'s socket with ``sendfile``, beside the event loop.

    :raises RequestBodyError: the file is shorter or longer than ``size`` (it changed meanwhile)
    :raises OSError: the file cannot be read, or the connection broke
    """
    sock = transport.get_extra_info("socket")
    out_fd = os.dup(sock.fileno())
    stop = threading.Event()
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(_pumps(), _pump, out_fd, body.path, size, stop)
    finally:
        stop.set()  # a cancelled request: the pump gives up within a poll interval
        # The pump may still run after a cancellation: it owns the descriptor then.
        # (run_in_executor cannot interrupt it; it closes out_fd itself when it ends.)


def _pumps() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(_PUMPS, thread_name_prefix="ais-etl-sendfile")
        return _executor


def _pump(out_fd: int, path: str, size: int, stop: threading.Event) -> None:
    """Send the file's first ``size`` bytes to the non-blocking socket ``out_fd``, then close ``out_fd``."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size != size:
                raise RequestBodyError(f"request body file {path!r} is no longer {size} bytes long")
            _sendfile_all(out_fd, f.fileno(), size, stop)
    finally:
        os.close(out_fd)


def _sendfile_all(out_fd: int, in_fd: int, size: int, stop: threading.Event) -> None:
    poller = select.poll()
    poller.register(out_fd, select.POLLOUT)
    sent = 0
    while sent < size:
        if stop.is_set():
            raise ConnectionAbortedError("request given up while its body was being sent")
        try:
            n = os.sendfile(out_fd, in_fd, sent, size - sent)
        except BlockingIOError:
            with contextlib.suppress(InterruptedError):
                poller.poll(_POLL_MS)
            continue
        if n == 0:
            raise RequestBodyError(f"request body ended after {sent} of its announced {size} bytes")
        sent += n
