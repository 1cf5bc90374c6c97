"""The engine's connections to the pods' file sockets (``dataplane.filetransfer``): one message at a time each."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.runtime.filewire import MAX_MESSAGE, FileWireError, short_path

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["Link", "LinkDown", "Pod"]


class LinkDown(Exception):
    """The pod's file socket cannot be reached (``connect`` failed): use HTTP for it."""


class Link:
    """One connection to a pod's file socket: one message out and its answer back at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    async def open(cls, path: str) -> Link:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        try:
            with short_path(path) as name:
                await asyncio.get_running_loop().sock_connect(sock, name)
        except OSError as err:
            sock.close()
            raise LinkDown(f"cannot connect to {path}: {err}") from err
        return cls(sock)

    async def exchange(self, data: bytes) -> bytes:
        """Send one message and return its answer."""
        while True:
            try:
                self.sock.send(data)
                break
            except BlockingIOError:
                await self._ready(write=True)
        while True:
            try:
                answer, _, flags, _ = self.sock.recvmsg(MAX_MESSAGE)
            except BlockingIOError:
                await self._ready(write=False)
                continue
            if not answer:
                raise ConnectionResetError("the pod closed the connection")
            if flags & socket.MSG_TRUNC:
                raise FileWireError("answer cut")
            return answer

    async def _ready(self, *, write: bool) -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        fd = self.sock.fileno()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        (loop.add_writer if write else loop.add_reader)(fd, wake)
        try:
            await ready
        finally:
            (loop.remove_writer if write else loop.remove_reader)(fd)

    def half_close(self) -> None:
        """Say no more messages come: the pod answers the one in flight and names nothing after."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.sock.close()


class Pod:
    """The connections to one pod's socket (at most ``size`` in use) and the objects waiting for it."""

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.slots = asyncio.Semaphore(size)
        self.idle: list[Link] = []
        self.busy: set[Link] = set()
        self.waiting: list[Any] = []
        self.scheduled = False
        self.down = False
        self.singles_until = 0.0

    @contextlib.asynccontextmanager
    async def link(self) -> AsyncIterator[Link]:
        async with self.slots:
            link = self.idle.pop() if self.idle else await Link.open(self.path)
            self.busy.add(link)
            try:
                yield link
            except BaseException:
                link.close()  # its answer may still come: never reuse it
                raise
            finally:
                self.busy.discard(link)
            self.idle.append(link)

    def half_close_busy(self) -> None:
        """Half-close every connection with a message in flight (an ending job)."""
        for link in self.busy:
            link.half_close()

    def close(self) -> None:
        for link in self.idle:
            link.close()
        self.idle.clear()
