"""The engine's links to a pod's file socket: each message goes to the least busy worker of the pod.

A fake pod on a real ``SOCK_SEQPACKET`` socket: it accepts connections, says which of its workers
took each (as the runtime's hello does, ``runtime.filewire``) and answers messages when told.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.filelinks import Link, LinkDown, Pod
from airflow_ais_etl.runtime.filewire import encode_hello

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


class FakePod:
    """Accepts connections and hands them to workers in the order ``workers`` gives (then worker 0)."""

    def __init__(self, path: str, workers: list[int], count: int = 2) -> None:
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.lsock.bind(path)
        self.lsock.listen(16)
        self.lsock.setblocking(False)
        self.order = list(workers)
        self.count = count
        self.conns: list[tuple[socket.socket, int]] = []
        asyncio.get_running_loop().add_reader(self.lsock.fileno(), self.accept_all)

    def accept_all(self) -> None:
        while True:
            try:
                conn, _ = self.lsock.accept()
            except BlockingIOError:
                return
            worker = self.order.pop(0) if self.order else 0
            conn.sendall(encode_hello(worker, self.count))
            self.conns.append((conn, worker))

    def close(self) -> None:
        for conn, _ in self.conns:
            conn.close()
        asyncio.get_running_loop().remove_reader(self.lsock.fileno())
        self.lsock.close()


@pytest.fixture
def sock_path(tmp_path: Path) -> str:
    return str(tmp_path / "files.sock")


class Hold:
    """A message in flight: it holds one of the pod's links until released."""

    def __init__(self, pod: Pod) -> None:
        self.link: asyncio.Future[Link] = asyncio.get_running_loop().create_future()
        self.done = asyncio.Event()
        self.task = asyncio.ensure_future(self._hold(pod))

    async def _hold(self, pod: Pod) -> None:
        async with pod.link() as link:
            self.link.set_result(link)
            await self.done.wait()

    async def started(self) -> Hold:
        await asyncio.wait_for(asyncio.shield(self.link), 10)
        return self

    async def release(self) -> None:
        self.done.set()
        await self.task


async def hold(pod: Pod) -> Hold:
    return await Hold(pod).started()


def busy_workers(pod: Pod) -> list[int]:
    return sorted(link.worker for link in pod.busy)


@pytest.mark.asyncio
async def test_messages_in_flight_go_to_idle_links_of_different_workers(sock_path: str) -> None:
    fake = FakePod(sock_path, workers=[1, 0, 0])
    pod = Pod(sock_path, size=8)
    try:
        opened = [await hold(pod) for _ in range(3)]
        assert busy_workers(pod) == [0, 0, 1]
        for h in opened:
            await h.release()
        assert [link.worker for link in pod.idle] == [1, 0, 0]  # the last one back would be taken first
        two = [await hold(pod), await hold(pod)]
        assert busy_workers(pod) == [0, 1]  # not both on worker 0 while worker 1 idles
        for h in two:
            await h.release()
        assert len(fake.conns) == 3  # no new connection was needed
    finally:
        pod.close()
        fake.close()


@pytest.mark.parametrize(
    ("size", "accepts", "busy", "links"),
    [
        # a worker has no link yet: a new link is opened, and the pod's next accept reaches it
        (8, [0, 0, 1], [0, 1], 3),
        # no more links may be opened: the idle one, on busy worker 0, takes the message
        (2, [0, 0], [0, 0], 2),
    ],
    ids=["opens-a-link-to-reach-an-idle-worker", "shares-a-busy-worker-when-no-link-is-left"],
)
@pytest.mark.asyncio
async def test_a_message_while_the_idle_link_is_on_a_busy_worker(
    sock_path: str, size: int, accepts: list[int], busy: list[int], links: int
) -> None:
    fake = FakePod(sock_path, workers=accepts)
    pod = Pod(sock_path, size=size)
    try:
        first, second = await hold(pod), await hold(pod)  # both on worker 0
        await second.release()  # idle: a link to worker 0, which still runs the first message
        third = await hold(pod)
        assert busy_workers(pod) == busy
        assert len(fake.conns) == links
        await first.release()
        await third.release()
    finally:
        pod.close()
        fake.close()


@pytest.mark.asyncio
async def test_a_socket_that_never_says_hello_is_unusable(sock_path: str) -> None:
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    mute.bind(sock_path)
    mute.listen(1)
    try:
        link = asyncio.ensure_future(Link.open(sock_path))
        await asyncio.sleep(0.05)
        conn, _ = mute.accept()
        conn.send(b"not a hello")
        with pytest.raises(LinkDown, match="no hello"):
            await link
        conn.close()
    finally:
        mute.close()
