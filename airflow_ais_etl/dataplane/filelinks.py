"""The engine's connections to the pods' file sockets (``dataplane.filetransfer``): one message at a time each.

A pod's worker processes share its socket, and each runs the messages of the connections it
accepted. Every connection starts with the pod's hello naming that worker (``runtime.filewire``),
and a message goes on an idle connection of the least busy worker, so two messages in flight run
on two workers rather than queueing on one while the other idles.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.runtime.filewire import MAX_MESSAGE, FileWireError, decode_hello, short_path

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["HELLO_SECONDS", "Link", "LinkDown", "Pod"]

HELLO_SECONDS = 10.0
"""How long a new connection waits for the pod's hello (a pod that never sends one is unusable)."""


class LinkDown(Exception):
    """The pod's file socket cannot be reached (``connect`` failed): use HTTP for it."""


class Link:
    """One connection to a pod's file socket: one message out and its answer back at a time.

    The socket stays registered with the event loop for its whole life (one registration, not two
    per message), and an answer wakes the message's future straight from the loop's callback.
    """

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.sock = sock
        self.loop = loop
        self.worker = 0
        """The pod's worker process that runs this connection's messages (from its hello)."""
        self.workers = 1
        """How many worker processes the pod has."""
        self._answer: asyncio.Future[bytes] | None = None
        self._gone: BaseException | None = None
        """Why the connection cannot carry another message (the pod closed it, or it broke)."""
        loop.add_reader(sock.fileno(), self._readable)

    @classmethod
    async def open(cls, path: str) -> Link:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            with short_path(path) as name:
                await loop.sock_connect(sock, name)
        except OSError as err:
            sock.close()
            raise LinkDown(f"cannot connect to {path}: {err}") from err
        link = cls(sock, loop)
        try:
            link.worker, link.workers = decode_hello(await link._receive(HELLO_SECONDS))
        except (OSError, asyncio.TimeoutError, FileWireError) as err:
            link.close()
            raise LinkDown(f"no hello from {path}: {err!r}") from err
        return link

    async def exchange(self, data: bytes, timeout: float | None = None) -> bytes:
        """Send one message and return its answer; :class:`asyncio.TimeoutError` after ``timeout`` seconds."""
        if self._gone is not None:
            raise self._gone
        while True:
            try:
                self.sock.send(data)
                break
            except BlockingIOError:
                await self._writable()
        return await self._receive(timeout)

    async def _receive(self, timeout: float | None) -> bytes:
        """Wait for the next message from the pod."""
        answer = self._answer = self.loop.create_future()
        timer = None if timeout is None else self.loop.call_later(timeout, _expire, answer)
        try:
            return await answer
        finally:
            self._answer = None
            if timer is not None:
                timer.cancel()

    def _readable(self) -> None:
        """Hand an answer (or the end of the connection) to the message waiting for it."""
        try:
            data, _, flags, _ = self.sock.recvmsg(MAX_MESSAGE)
        except BlockingIOError:
            return
        except OSError as err:
            data, flags = b"", 0
            self._gone = err
        answer = self._answer
        if not data:
            self._gone = self._gone or ConnectionResetError("the pod closed the connection")
            self.loop.remove_reader(self.sock.fileno())
        if answer is None or answer.done():
            return  # nobody waits (a message given up on closes its link; an idle pod's close)
        if self._gone is not None:
            answer.set_exception(self._gone)
        elif flags & socket.MSG_TRUNC:
            answer.set_exception(FileWireError("answer cut"))
        else:
            answer.set_result(data)

    async def _writable(self) -> None:
        ready = self.loop.create_future()
        fd = self.sock.fileno()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        self.loop.add_writer(fd, wake)
        try:
            await ready
        finally:
            self.loop.remove_writer(fd)

    def half_close(self) -> None:
        """Say no more messages come: the pod answers the one in flight and names nothing after."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


def _expire(answer: asyncio.Future[bytes]) -> None:
    if not answer.done():
        answer.set_exception(asyncio.TimeoutError())


class Pod:
    """The connections to one pod's socket (at most ``size`` in use) and the objects waiting for it."""

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.size = size
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
            link = self._idle_link()
            if link is None:
                link = await Link.open(self.path)
            self.busy.add(link)
            try:
                yield link
            except BaseException:
                link.close()  # its answer may still come: never reuse it
                raise
            finally:
                self.busy.discard(link)
            self.idle.append(link)

    def _idle_link(self) -> Link | None:
        """Take the idle connection of the least busy worker; ``None``: open a new one.

        A new one, too, while some worker has no connection yet and the busiest-free choice would
        queue behind a message already running: the pod's next accept may reach the idle worker.
        """
        if not self.idle:
            return None
        busy = collections.Counter(link.worker for link in self.busy)
        best = min(self.idle, key=lambda link: busy[link.worker])
        if busy[best.worker]:
            reached = {link.worker for link in (*self.idle, *self.busy)}
            if len(reached) < best.workers and len(self.idle) + len(self.busy) < self.size:
                return None
        self.idle.remove(best)
        return best

    def half_close_busy(self) -> None:
        """Half-close every connection with a message in flight (an ending job)."""
        for link in self.busy:
            link.half_close()

    def close(self) -> None:
        for link in self.idle:
            link.close()
        self.idle.clear()
