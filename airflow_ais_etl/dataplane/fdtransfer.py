"""The engine side of the fd transport (``runtime.fdwire``): objects go to pods as file descriptors.

When a pod says so in its ``/health`` answer and both buckets are local directories, the engine
opens each source file read-only and creates the destination's temp file (the local bucket's own
temp + rename mechanism), passes both descriptors over the pod's Unix socket and waits for the
verdict: on ``200`` it checks the written length (``fstat``) and renames the temp file into place;
on anything else it removes it. The engine moves no object byte. Objects queued for the same pod
in one turn of the event loop travel in one message (up to :data:`FD_BATCH_OBJECTS`; objects over
:data:`~airflow_ais_etl.dataplane.batcher.BATCH_OBJECT` alone), over up to ``num_workers``
connections per pod, so the pod runs them in parallel.

Every object ends as it would over HTTP: the request path and query a request of its own would
carry (``dataplane.podrequest``), its own error status and message, its ``obj_timeout``. A message
that fails as a whole (timeout, lost connection) sends its objects again one per message; a pod
whose socket cannot be reached gets its objects over HTTP, which then reports what is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_ais_etl.cluster.base import PodEndpoint
from airflow_ais_etl.dataplane.batcher import (
    BATCH_OBJECT,
    OBJECTS_IN_FLIGHT,
    SLOW_SPELL_SECONDS,
    object_error,
)
from airflow_ais_etl.dataplane.fdlinks import LinkDown, Pod
from airflow_ais_etl.dataplane.podrequest import build_request
from airflow_ais_etl.dataplane.room import Room
from airflow_ais_etl.dataplane.storage.local import LocalBucket
from airflow_ais_etl.etl.constants import HPUSH
from airflow_ais_etl.etl.errors import AisEtlError, TransformError
from airflow_ais_etl.etl.naming import uname
from airflow_ais_etl.runtime.fdwire import (
    FD_HEADER,
    FD_VERSION,
    NOT_RUN,
    FdFormatError,
    decode_answer,
    encode_request,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from airflow_ais_etl.cluster.base import BucketRef
    from airflow_ais_etl.dataplane.podcaps import PodCaps
    from airflow_ais_etl.dataplane.storage.base import Bucket, ObjInfo
    from airflow_ais_etl.dataplane.storage.tempfiles import TempFile
    from airflow_ais_etl.etl.msg import InitMsg

__all__ = ["FD_BATCH_OBJECTS", "FdTransfer", "request_path"]

FD_BATCH_OBJECTS = 32
"""Objects per message: enough to pay one round trip per many small objects, few enough that one
pod's objects in flight (:data:`OBJECTS_IN_FLIGHT`) fill several messages, run in parallel."""

FD_IN_FLIGHT = 256
"""Objects of one job on their way at once (two descriptors each): a job with a very large
``num_workers`` waits here rather than run out of descriptors (a soft limit of 1,024 is common)."""

log = logging.getLogger(__name__)

_ALONE = object()
"""The verdict of an object whose message failed as a whole or was not run: send it in one of its own."""
_VIA_HTTP = object()
"""The verdict of an object whose pod cannot be reached over its socket: send it over HTTP."""


class _Item:
    """One object on its way: its request path, its source descriptor (until sent), its temp file."""

    __slots__ = ("done", "name", "path", "src", "taken", "temp", "together")

    def __init__(self, name: str, path: str, src: int, temp: TempFile, done: asyncio.Future[Any]) -> None:
        self.name, self.path, self.src, self.temp, self.done = name, path, src, temp, done
        self.taken = False
        """Its descriptors are in a message: from then on only the sender may close them."""
        self.together: _Together | None = None
        """The batch (``to_bucket_many``) that waits for it with others, if any."""

    def close_source(self) -> None:
        if self.src >= 0:
            os.close(self.src)
            self.src = -1


class _Together:
    """One wait for several objects' verdicts: each message's answer wakes the waiter once."""

    __slots__ = ("loop", "ready", "wake")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ready: list[_Item] = []
        self.wake: asyncio.Future[None] | None = None

    def one_done(self, item: _Item) -> None:
        self.ready.append(item)
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)

    async def next(self) -> list[_Item]:
        """Wait for some verdicts; return the objects that have theirs now."""
        if not self.ready:
            self.wake = self.loop.create_future()
            await self.wake
        ready, self.ready = self.ready, []
        return ready


def request_path(msg: InitMsg, bucket_ref: BucketRef, obj: str) -> str:
    """Return the path the pod's handler would see (decoded) for ``obj``'s own HTTP request.

    The same as ``unquote`` of :func:`~airflow_ais_etl.dataplane.podrequest.build_request`'s path,
    without building and parsing a URL per object (tests/unit/dataplane checks they agree).
    """
    if msg.comm_type == HPUSH:
        return f"/{bucket_ref.name}/{obj}"
    return "/" + uname(bucket_ref.provider, bucket_ref.name, obj)


class FdTransfer:
    """Send the objects of one job to the pods that take descriptors (``runtime.fdwire``).

    :param caps: the pods' ``/health`` answers (shared with the batcher: asked once per pod)
    :param links_per_pod: the job's ``num_workers``: connections (messages in flight) per pod
    :param timeout: seconds for one message's answer (``obj_timeout`` or the job's ``request_timeout``)
    """

    def __init__(
        self,
        caps: PodCaps,
        msg: InitMsg,
        src: LocalBucket,
        bucket_ref: BucketRef,
        etl_args: str,
        *,
        links_per_pod: int,
        timeout: float | None,
    ) -> None:
        self.caps = caps
        self.msg = msg
        self.src = src
        self.bucket_ref = bucket_ref
        self.etl_args = etl_args
        self.links_per_pod = links_per_pod
        self.timeout = timeout
        self.supported: dict[str, bool] = {}
        self._pods: dict[str, Pod] = {}
        _method, url = build_request(  # the query (and the checks) of every object's own request
            PodEndpoint("", "", "http://pod"),
            comm_type=msg.comm_type,
            arg_type=msg.arg_type,
            bucket_ref=bucket_ref,
            obj="-",
            protocol=msg.protocol,
            etl_args=etl_args,
        )
        self.query = urlsplit(url).query
        self._tasks: set[asyncio.Task[None]] = set()
        self._room = Room(FD_IN_FLIGHT)
        self._loop: asyncio.AbstractEventLoop | None = None
        """The job's event loop, asked once: each ``get_running_loop`` costs a ``getpid`` call."""

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    @property
    def objects_per_worker(self) -> int:
        """How many objects per ``num_workers`` slot the engine keeps in flight, so messages fill up."""
        return max(1, OBJECTS_IN_FLIGHT // self.links_per_pod)

    def known_to_serve(self, endpoint: PodEndpoint, dst: Bucket) -> bool | None:
        """Tell without waiting whether :meth:`serves` says yes (``None``: the pod was not asked yet)."""
        if endpoint.fd_socket is None or not isinstance(dst, LocalBucket):
            return False
        known = self.supported.get(endpoint.url)
        if known is None:
            return None
        return known and not self._pod(endpoint).down

    async def serves(self, endpoint: PodEndpoint, dst: Bucket) -> bool:
        """Tell whether ``endpoint``'s pod takes descriptors for results that go to ``dst``."""
        known = self.known_to_serve(endpoint, dst)
        if known is None:
            said = (await self.caps.headers(endpoint)).get(FD_HEADER, "")
            self.supported[endpoint.url] = said.strip() == FD_VERSION
            known = self.known_to_serve(endpoint, dst)
        return bool(known)

    def _pod(self, endpoint: PodEndpoint) -> Pod:
        pod = self._pods.get(endpoint.url)
        if pod is None:
            assert endpoint.fd_socket is not None
            pod = self._pods[endpoint.url] = Pod(endpoint.fd_socket, self.links_per_pod)
        return pod

    async def to_bucket(
        self, endpoint: PodEndpoint, info: ObjInfo, dst: LocalBucket, dst_name: str
    ) -> int | None:
        """Transform ``info`` into ``dst_name`` through the pod; return its size (``None``: use HTTP)."""
        await self._room.take(1)
        try:
            size = await self._attempt(endpoint, info, dst, dst_name, alone=False)
            if size is _ALONE:  # its message failed as a whole, or left it undone: once more, alone
                size = await self._attempt(endpoint, info, dst, dst_name, alone=True)
            return None if size is _VIA_HTTP else size
        finally:
            self._room.give(1)

    async def _attempt(
        self, endpoint: PodEndpoint, info: ObjInfo, dst: LocalBucket, dst_name: str, *, alone: bool
    ) -> Any:
        """Send ``info`` once: its size, or :data:`_ALONE` / :data:`_VIA_HTTP` to send it again."""
        item = self._begin(endpoint, info, dst, dst_name, alone=alone)
        try:
            verdict = await item.done
        except BaseException:
            _abandon(item)
            raise
        return self._conclude(endpoint, item, verdict)

    def _begin(
        self, endpoint: PodEndpoint, info: ObjInfo, dst: LocalBucket, dst_name: str, *, alone: bool
    ) -> _Item:
        """Open ``info``'s source and create its temp file, and queue both for ``endpoint``'s pod."""
        src = self.src.open_source(info.name)
        try:
            temp = dst.begin_write(dst_name, anonymous=True)
        except BaseException:
            os.close(src)
            raise
        done: asyncio.Future[Any] = self._running_loop().create_future()
        item = _Item(info.name, request_path(self.msg, self.bucket_ref, info.name), src, temp, done)
        self._queue(endpoint, item, alone or not 0 <= info.size <= BATCH_OBJECT)
        return item

    def _conclude(self, endpoint: PodEndpoint, item: _Item, verdict: Any) -> Any:
        """Settle an answered object: its size, or :data:`_ALONE` / :data:`_VIA_HTTP` (temp file removed)."""
        if verdict is _VIA_HTTP or verdict is _ALONE:
            item.temp.discard()
            return verdict
        return self._settle(endpoint, item.name, item.temp, verdict)

    async def to_bucket_many(
        self,
        endpoint: PodEndpoint,
        infos: list[ObjInfo],
        dst: LocalBucket,
        dst_names: list[str],
        report: Callable[[int, int | Exception], None],
    ) -> list[int]:
        """Transform several objects through ``endpoint``'s pod as :meth:`to_bucket` does each one.

        One wait per message that carries some of them, not one per object. ``report(i, size or
        error)`` runs for each object right after it is settled (no wait between the rename and
        the report, so an abort never loses a written object's note); bugs are raised. Returns
        the indexes of the objects to send over HTTP instead.
        """
        await self._room.take(len(infos))
        try:
            return await self._many(endpoint, infos, dst, dst_names, report)
        finally:
            self._room.give(len(infos))

    async def _many(
        self,
        endpoint: PodEndpoint,
        infos: list[ObjInfo],
        dst: LocalBucket,
        dst_names: list[str],
        report: Callable[[int, int | Exception], None],
    ) -> list[int]:
        together = _Together(self._running_loop())
        waiting: dict[int, tuple[int, _Item]] = {}
        again: list[int] = []
        via_http: list[int] = []
        try:
            for i, (info, name) in enumerate(zip(infos, dst_names, strict=True)):
                try:
                    item = self._begin(endpoint, info, dst, name, alone=False)
                except (AisEtlError, OSError) as exc:
                    report(i, exc)
                    continue
                item.together = together
                waiting[id(item)] = (i, item)
            while waiting:
                for item in await together.next():
                    i, _ = waiting.pop(id(item))
                    try:
                        size = self._conclude(endpoint, item, item.done.result())
                    except (AisEtlError, OSError) as exc:
                        report(i, exc)
                        continue
                    if size is _ALONE:  # its message failed as a whole, or left it undone: once more, alone
                        again.append(i)
                    elif size is _VIA_HTTP:
                        via_http.append(i)
                    else:
                        report(i, size)
        except BaseException:
            for _, item in waiting.values():
                item.done.cancel()
                _abandon(item)
            raise

        async def alone(i: int) -> None:
            size = await _caught(self._attempt(endpoint, infos[i], dst, dst_names[i], alone=True))
            if size is _VIA_HTTP:
                via_http.append(i)
            else:
                report(i, size)

        await asyncio.gather(*(alone(i) for i in again))
        return via_http

    def _settle(self, endpoint: PodEndpoint, name: str, temp: TempFile, verdict: Any) -> int:
        """Rename a complete result into place; remove anything else and raise the object's error."""
        try:
            if isinstance(verdict, BaseException):
                raise verdict
            status, value = verdict
            if status != 200:
                raise object_error(endpoint, name, status, str(value).encode())
            if temp.size() != value:
                raise TransformError(
                    f"transform of {name!r}: the pod reported {value} byte(s) but wrote {temp.size()}",
                    object_name=name,
                    target=endpoint.target_id,
                    pod_name=endpoint.pod_name,
                )
        except BaseException:
            temp.discard()
            raise
        temp.commit()
        return int(value)

    # ---------------------------------------------------------------- messages
    def _queue(self, endpoint: PodEndpoint, item: _Item, alone: bool) -> None:
        pod = self._pod(endpoint)
        loop = self._running_loop()
        if alone or loop.time() < pod.singles_until:
            self._start(endpoint, pod, [item])
            return
        pod.waiting.append(item)
        if not pod.scheduled:
            pod.scheduled = True
            loop.call_soon(self._launch, endpoint, pod)

    def _launch(self, endpoint: PodEndpoint, pod: Pod) -> None:
        """Send what waits for ``pod`` as messages of at most :data:`FD_BATCH_OBJECTS` objects."""
        pod.scheduled = False
        items, pod.waiting = pod.waiting, []
        for item in items:
            if item.done.done():  # cancelled meanwhile (its temp file is gone)
                item.close_source()
        items = [item for item in items if not item.done.done()]
        for start in range(0, len(items), FD_BATCH_OBJECTS):
            self._start(endpoint, pod, items[start : start + FD_BATCH_OBJECTS])

    def _start(self, endpoint: PodEndpoint, pod: Pod, items: list[_Item]) -> None:
        task = asyncio.ensure_future(self._send(endpoint, pod, items))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, endpoint: PodEndpoint, pod: Pod, items: list[_Item]) -> None:
        verdicts: list[Any] = [_ALONE] * len(items)
        try:
            verdicts = await self._exchange(endpoint, pod, items)
        finally:
            for item, verdict in zip(items, verdicts, strict=True):
                item.close_source()
                if not item.done.done():
                    item.done.set_result(verdict)
                    if item.together is not None:
                        item.together.one_done(item)
                elif item.taken and item.done.cancelled():
                    item.temp.discard()

    async def _exchange(self, endpoint: PodEndpoint, pod: Pod, items: list[_Item]) -> list[Any]:
        """Send one message; return each object's verdict (``(status, value)``, an error, or a resend)."""
        live: list[_Item] = []
        try:
            async with pod.link() as link:
                live = [item for item in items if not item.done.done()]  # no await from here to the send
                if not live:
                    return [_ALONE] * len(items)
                for item in live:
                    item.taken = True
                request = encode_request(self.query, [item.path for item in live])
                fds = [fd for item in live for fd in (item.src, item.temp.fd)]
                answer = await asyncio.wait_for(link.exchange(request, fds), self.timeout)
            results = decode_answer(answer, len(live))
        except LinkDown as err:
            log.info(
                "fd transport to %s unusable (%s): sending its objects over HTTP", endpoint.pod_name, err
            )
            pod.down = True
            return [_VIA_HTTP] * len(items)
        except (OSError, asyncio.TimeoutError, FdFormatError) as err:
            if len(live) > 1:
                log.debug("message of %d to %s failed (%r): sending alone", len(live), endpoint.pod_name, err)
                pod.singles_until = asyncio.get_running_loop().time() + SLOW_SPELL_SECONDS
                return [_ALONE] * len(items)
            return [self._failed(endpoint, live[0].name, err)] * len(items)
        by_item = dict(zip(map(id, live), results, strict=True))
        verdicts = [by_item.get(id(item), (NOT_RUN, 0)) for item in items]
        return [_ALONE if verdict[0] == NOT_RUN else verdict for verdict in verdicts]

    def _failed(self, endpoint: PodEndpoint, name: str, err: BaseException) -> TransformError:
        if isinstance(err, asyncio.TimeoutError):
            reason = f"transform of {name!r} timed out after {self.timeout}s"
        else:
            reason = f"cannot reach pod {endpoint.pod_name} over {endpoint.fd_socket}: {err!r}"
        exc = TransformError(reason, object_name=name, target=endpoint.target_id, pod_name=endpoint.pod_name)
        exc.__cause__ = err
        return exc

    async def aclose(self) -> None:
        """Cancel messages in flight (an aborted job) and close every connection."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        for pod in self._pods.values():
            for item in pod.waiting:
                item.close_source()
            pod.waiting.clear()
            pod.close()


def _abandon(item: _Item) -> None:
    """Clean up after an object whose wait was cut short (cancelled, or a bug)."""
    done = item.done
    if not item.taken or (done.done() and not done.cancelled()):
        item.temp.discard()  # else the pod may still write into it: the sender removes it after


async def _caught(attempt: Awaitable[Any]) -> Any:
    """Return an object's own error instead of raising it (a bug is raised)."""
    try:
        return await attempt
    except (AisEtlError, OSError) as exc:
        return exc
