"""The engine side of the file transport (``runtime.filewire``): pods read and write the objects in place.

When a pod says so in its ``/health`` answer and both buckets are local directories, the engine
checks each object's names (as its local buckets would before a read or a write), sends them over
the pod's Unix socket and waits for the verdict: the pod opened the source, wrote the result to a
temp file and gave it its name (``runtime.bucketfiles``, the engine's own mechanism). The engine
moves no object byte and makes no system call per object. Objects queued for the same pod in one
turn of the event loop travel in one message (up to :data:`FILE_BATCH_OBJECTS`; objects over
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
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_ais_etl.cluster.base import PodEndpoint
from airflow_ais_etl.dataplane.batcher import (
    BATCH_OBJECT,
    SLOW_SPELL_SECONDS,
    object_error,
)
from airflow_ais_etl.dataplane.filelinks import LinkDown, Pod
from airflow_ais_etl.dataplane.podrequest import build_request
from airflow_ais_etl.dataplane.storage.local import LocalBucket
from airflow_ais_etl.etl.constants import HPUSH
from airflow_ais_etl.etl.errors import AisEtlError, StorageError, TransformError
from airflow_ais_etl.etl.naming import uname
from airflow_ais_etl.runtime.bucketfiles import process_umask
from airflow_ais_etl.runtime.filewire import (
    FILE_HEADER,
    FILE_VERSION,
    NOT_RUN,
    STORE_FAILED,
    Buckets,
    FileWireError,
    decode_answer,
    encode_request,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_ais_etl.cluster.base import BucketRef
    from airflow_ais_etl.dataplane.podcaps import PodCaps
    from airflow_ais_etl.dataplane.storage.base import Bucket, ObjInfo
    from airflow_ais_etl.etl.msg import InitMsg

__all__ = ["FILE_BATCH_OBJECTS", "FileTransfer", "request_path"]

FILE_BATCH_OBJECTS = 96
"""Objects per message. Each message costs both sides a wake-up across processes (tens of
microseconds on these VMs): in one interleaved run on 4 KiB objects, 32 per message cost engine and
pods 55 us of CPU per object, 64 and 120 per message 45 us (bench/README.md, fifth session)."""

FILE_OBJECTS_IN_FLIGHT = 2 * FILE_BATCH_OBJECTS
"""Objects per pod in flight: a message for each of a 2-CPU pod's workers. They cost the engine only
their names; the byte budget still bounds the bytes."""

MESSAGE_NAMES = 32 << 10
"""Characters of names per message at most: even escaped, a message stays below ``MAX_MESSAGE``."""

DRAIN_SECONDS = 2.0
"""How long an ending job waits for the answers of messages in flight (the pods stop naming results
as soon as the engine half-closes; what they named before is counted and noted)."""

log = logging.getLogger(__name__)

_ALONE = object()
"""The verdict of an object whose message failed as a whole or was not run: send it in one of its own."""
_VIA_HTTP = object()
"""The verdict of an object whose pod cannot be reached over its socket: send it over HTTP."""


class _Item:
    """One object on its way: its request path, its source and destination names, its verdict."""

    __slots__ = ("cancelled", "dst_name", "index", "name", "path", "verdict", "waiter", "weight")

    def __init__(self, name: str, path: str, dst_name: str, waiter: _Waiter, index: int) -> None:
        self.name, self.path, self.dst_name, self.waiter = name, path, dst_name, waiter
        self.index = index
        """Its place in the caller's list (``to_bucket_many``), as ``report`` names it."""
        self.weight = len(path) + len(name) + len(dst_name)
        """Characters of names it adds to a message."""
        self.verdict: Any = None
        """``(status, value)``, an error, :data:`_ALONE` or :data:`_VIA_HTTP`, once answered."""
        self.cancelled = False
        """Nobody waits for it any more: it is left out of the message it would have gone in."""


class _Waiter:
    """One wait for one or several objects' verdicts: each message's answer wakes it once.

    With ``settle``, final verdicts are settled (counted, noted) the moment they arrive, a message's
    worth at a time, even once nobody waits any more (an aborted job): a result a pod named is
    never left unnoted. Only the objects to send again (alone, or over HTTP) go to :attr:`ready`.
    """

    __slots__ = ("bug", "items", "loop", "open", "ready", "settle", "wake")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, settle: Callable[[list[_Item]], None] | None = None
    ) -> None:
        self.loop = loop
        self.settle = settle
        self.items: list[_Item] = []
        self.ready: list[_Item] = []
        self.open = 0
        """Objects whose verdicts are neither settled nor taken from :attr:`ready` yet."""
        self.bug: BaseException | None = None
        """What went wrong while settling a verdict (not an object's error): raised to the waiter."""
        self.wake: asyncio.Future[None] | None = None

    def answer(self, items: list[_Item]) -> None:
        """Take the verdicts of ``items`` (one message's): settle the final ones now, keep the rest
        for :meth:`next`, and wake the wait."""
        if self.settle is None:
            self.ready += items
        else:
            final = [item for item in items if item.verdict is not _ALONE and item.verdict is not _VIA_HTTP]
            if len(final) < len(items):
                self.ready += [item for item in items if item.verdict is _ALONE or item.verdict is _VIA_HTTP]
            if final:
                self.open -= len(final)
                try:
                    self.settle(final)
                except BaseException as exc:  # a bug: the waiter raises it
                    self.bug = self.bug or exc
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)

    async def next(self) -> list[_Item]:
        """Wait for some verdicts; return the objects that have theirs now (and are not settled)."""
        if not self.ready:
            self.wake = self.loop.create_future()
            await self.wake
        if self.bug is not None:
            raise self.bug
        ready, self.ready = self.ready, []
        self.open -= len(ready)
        return ready

    def cancel(self) -> None:
        """Give up on every object not answered yet (a cancelled job)."""
        for item in self.items:
            if item.verdict is None:
                item.cancelled = True


def request_path(msg: InitMsg, bucket_ref: BucketRef, obj: str) -> str:
    """Return the path the pod's handler would see (decoded) for ``obj``'s own HTTP request.

    The same as ``unquote`` of :func:`~airflow_ais_etl.dataplane.podrequest.build_request`'s path,
    without building and parsing a URL per object (tests/unit/dataplane checks they agree).
    """
    if msg.comm_type == HPUSH:
        return f"/{bucket_ref.name}/{obj}"
    return "/" + uname(bucket_ref.provider, bucket_ref.name, obj)


class FileTransfer:
    """Have the pods that read and write objects in place transform the objects of one job (``runtime.filewire``).

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
        self._path_prefix = request_path(msg, bucket_ref, "")
        """Every object's request path is this followed by its name (:func:`request_path`)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._buckets: Buckets | None = None
        self._closing = False
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
        return max(1, FILE_OBJECTS_IN_FLIGHT // self.links_per_pod)

    def known_to_serve(self, endpoint: PodEndpoint, dst: Bucket) -> bool | None:
        """Tell without waiting whether :meth:`serves` says yes (``None``: the pod was not asked yet)."""
        if endpoint.file_socket is None or not isinstance(dst, LocalBucket):
            return False
        known = self.supported.get(endpoint.url)
        if known is None:
            return None
        return known and not self._pod(endpoint).down

    async def serves(self, endpoint: PodEndpoint, dst: Bucket) -> bool:
        """Tell whether ``endpoint``'s pod reads and writes in place objects whose results go to ``dst``."""
        known = self.known_to_serve(endpoint, dst)
        if known is None:
            said = (await self.caps.headers(endpoint)).get(FILE_HEADER, "")
            self.supported[endpoint.url] = said.strip() == FILE_VERSION
            known = self.known_to_serve(endpoint, dst)
        return bool(known)

    def _pod(self, endpoint: PodEndpoint) -> Pod:
        pod = self._pods.get(endpoint.url)
        if pod is None:
            assert endpoint.file_socket is not None
            pod = self._pods[endpoint.url] = Pod(endpoint.file_socket, self.links_per_pod)
        return pod

    def _buckets_for(self, dst: LocalBucket) -> Buckets:
        """Return what every message names: the job's source and its one destination (asked once)."""
        buckets = self._buckets
        if buckets is None:
            src = self.src
            buckets = Buckets(src.root, src.real_root, dst.root, dst.url, dst.fsyncs, process_umask())
            self._buckets = buckets
        elif buckets.dst_url != dst.url:
            raise ValueError(f"one file transfer serves one destination: {buckets.dst_url}, not {dst.url}")
        return buckets

    async def to_bucket(
        self, endpoint: PodEndpoint, info: ObjInfo, dst: LocalBucket, dst_name: str
    ) -> int | None:
        """Transform ``info`` into ``dst_name`` through the pod; return its size (``None``: use HTTP)."""
        size = await self._attempt(endpoint, info, dst, dst_name, alone=False)
        if size is _ALONE:  # its message failed as a whole, or left it undone: once more, alone
            size = await self._attempt(endpoint, info, dst, dst_name, alone=True)
        return None if size is _VIA_HTTP else size

    async def _attempt(
        self, endpoint: PodEndpoint, info: ObjInfo, dst: LocalBucket, dst_name: str, *, alone: bool
    ) -> Any:
        """Send ``info`` once: its size, or :data:`_ALONE` / :data:`_VIA_HTTP` to send it again."""
        waiter = _Waiter(self._running_loop())
        (item,) = self._begin(endpoint, dst, waiter, [(-1, info, dst_name)], alone=alone)
        try:
            await waiter.next()
        except BaseException:
            waiter.cancel()
            raise
        return self._conclude(endpoint, item, item.verdict)

    def _begin(
        self,
        endpoint: PodEndpoint,
        dst: LocalBucket,
        waiter: _Waiter,
        objects: Sequence[tuple[int, ObjInfo, str]],
        *,
        alone: bool,
        refused: Callable[[int, Exception], None] | None = None,
    ) -> list[_Item]:
        """Check each object's result name as a write would, and queue the objects for ``endpoint``'s pod.

        ``objects`` are ``(index, info, destination name)``. A refused name is raised, or with
        ``refused`` given, handed to it and the object left out. Its source name was checked when
        the job planned it (``LocalBucket`` lists and stats only names inside the bucket), and the
        pod follows a link only inside the source directory.
        """
        bad = dst.refused_writes([dst_name for _index, _info, dst_name in objects])
        if bad:
            if refused is None:
                raise next(iter(bad.values()))
            for k, exc in bad.items():
                refused(objects[k][0], exc)
            objects = [obj for k, obj in enumerate(objects) if k not in bad]
        prefix = self._path_prefix
        batched: list[_Item] = []
        singles: list[_Item] = []
        for index, info, dst_name in objects:
            item = _Item(info.name, prefix + info.name, dst_name, waiter, index)
            (singles if alone or not 0 <= info.size <= BATCH_OBJECT else batched).append(item)
        items = batched + singles
        waiter.items += items
        waiter.open += len(items)
        self._queue(endpoint, self._buckets_for(dst), batched, singles)
        return items

    def _conclude(self, endpoint: PodEndpoint, item: _Item, verdict: Any) -> Any:
        """Settle an answered object: its size, or :data:`_ALONE` / :data:`_VIA_HTTP` to send it again."""
        if verdict is _VIA_HTTP or verdict is _ALONE:
            return verdict
        if isinstance(verdict, BaseException):
            raise verdict
        status, value = verdict
        if status == 200:
            return int(value)
        if status == STORE_FAILED:
            raise StorageError(str(value))
        raise object_error(endpoint, item.name, status, str(value).encode())

    async def to_bucket_many(
        self,
        endpoint: PodEndpoint,
        infos: list[ObjInfo],
        dst: LocalBucket,
        dst_names: list[str],
        report: Callable[[Sequence[tuple[int, int | Exception]]], None],
    ) -> list[int]:
        """Transform several objects through ``endpoint``'s pod as :meth:`to_bucket` does each one.

        One wait per message that carries some of them, not one per object. ``report(outcomes)``
        runs for a message's objects the moment its answer is in (the pod named their results
        before it answered), also after this call was cancelled, while :meth:`aclose` drains: each
        outcome is an object's index and its size or its error. Bugs are raised. Returns the
        indexes of the objects to send over HTTP instead.
        """

        def settle(items: list[_Item]) -> None:
            report([(item.index, self._outcome(endpoint, item)) for item in items])

        def refused(i: int, exc: Exception) -> None:
            report([(i, exc)])

        waiter = _Waiter(self._running_loop(), settle)
        via_http: list[int] = []
        try:
            objects = list(zip(range(len(infos)), infos, dst_names, strict=True))
            self._begin(endpoint, dst, waiter, objects, alone=False, refused=refused)
            while waiter.open:
                again = []
                for item in await waiter.next():
                    if item.verdict is _VIA_HTTP:
                        via_http.append(item.index)
                    else:  # its message failed as a whole, or left it undone: once more, alone
                        again.append((item.index, infos[item.index], item.dst_name))
                self._begin(endpoint, dst, waiter, again, alone=True, refused=refused)
        except BaseException:
            waiter.cancel()
            raise
        if waiter.bug is not None:
            raise waiter.bug
        return via_http

    def _outcome(self, endpoint: PodEndpoint, item: _Item) -> int | Exception:
        """Return a settled object's size, or its own error."""
        verdict = item.verdict
        if type(verdict) is tuple and verdict[0] == 200:
            return int(verdict[1])
        try:
            return int(self._conclude(endpoint, item, verdict))
        except (AisEtlError, OSError) as exc:
            return exc

    # ---------------------------------------------------------------- messages
    def _queue(
        self, endpoint: PodEndpoint, buckets: Buckets, batched: list[_Item], singles: list[_Item]
    ) -> None:
        """Send ``singles`` one per message now; ``batched`` join what waits for the pod this turn of the loop."""
        pod = self._pod(endpoint)
        loop = self._running_loop()
        if batched and loop.time() < pod.singles_until:  # messages of many failed lately: one each
            singles, batched = batched + singles, []
        for item in singles:
            self._start(endpoint, pod, buckets, [item])
        if not batched:
            return
        pod.waiting += batched
        if not pod.scheduled:
            pod.scheduled = True
            loop.call_soon(self._launch, endpoint, pod, buckets)

    def _launch(self, endpoint: PodEndpoint, pod: Pod, buckets: Buckets) -> None:
        """Send what waits for ``pod`` as messages of at most :data:`FILE_BATCH_OBJECTS` objects."""
        pod.scheduled = False
        items, pod.waiting = [item for item in pod.waiting if not item.cancelled], []
        message: list[_Item] = []
        weight = 0
        for item in items:
            if message and (len(message) == FILE_BATCH_OBJECTS or weight + item.weight > MESSAGE_NAMES):
                self._start(endpoint, pod, buckets, message)
                message, weight = [], 0
            message.append(item)
            weight += item.weight
        if message:
            self._start(endpoint, pod, buckets, message)

    def _start(self, endpoint: PodEndpoint, pod: Pod, buckets: Buckets, items: list[_Item]) -> None:
        if self._closing:  # an ending job sends nothing more
            return
        task = asyncio.ensure_future(self._send(endpoint, pod, buckets, items))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, endpoint: PodEndpoint, pod: Pod, buckets: Buckets, items: list[_Item]) -> None:
        verdicts: list[Any] = [_ALONE] * len(items)
        try:
            verdicts = await self._exchange(endpoint, pod, buckets, items)
        finally:
            answered: dict[_Waiter, list[_Item]] = {}
            for item, verdict in zip(items, verdicts, strict=True):
                if item.verdict is None and (verdict is not _ALONE or not item.cancelled):
                    item.verdict = verdict
                    answered.setdefault(item.waiter, []).append(item)
            for waiter, theirs in answered.items():
                waiter.answer(theirs)

    async def _exchange(
        self, endpoint: PodEndpoint, pod: Pod, buckets: Buckets, items: list[_Item]
    ) -> list[Any]:
        """Send one message; return each object's verdict (``(status, value)``, an error, or a resend)."""
        live: list[_Item] = []
        try:
            async with pod.link() as link:
                live = [item for item in items if not item.cancelled]  # no await from here to the send
                if not live:
                    return [_ALONE] * len(items)
                request = encode_request(self.query, buckets, [(i.path, i.name, i.dst_name) for i in live])
                answer = await link.exchange(request, self.timeout)
            results = decode_answer(answer, len(live))
        except LinkDown as err:
            log.info(
                "file transport to %s unusable (%s): sending its objects over HTTP", endpoint.pod_name, err
            )
            pod.down = True
            return [_VIA_HTTP] * len(items)
        except (OSError, asyncio.TimeoutError, FileWireError) as err:
            if len(live) > 1:
                log.debug("message of %d to %s failed (%r): sending alone", len(live), endpoint.pod_name, err)
                pod.singles_until = asyncio.get_running_loop().time() + SLOW_SPELL_SECONDS
                return [_ALONE] * len(items)
            return [self._failed(endpoint, live[0].name, err)] * len(items)
        if len(live) < len(items):  # some were cancelled before the send: they were not run
            by_item = dict(zip(map(id, live), results, strict=True))
            results = [by_item.get(id(item), (NOT_RUN, 0)) for item in items]
        return [_ALONE if verdict[0] == NOT_RUN else verdict for verdict in results]

    def _failed(self, endpoint: PodEndpoint, name: str, err: BaseException) -> TransformError:
        if isinstance(err, asyncio.TimeoutError):
            reason = f"transform of {name!r} timed out after {self.timeout}s"
        else:
            reason = f"cannot reach pod {endpoint.pod_name} over {endpoint.file_socket}: {err!r}"
        exc = TransformError(reason, object_name=name, target=endpoint.target_id, pod_name=endpoint.pod_name)
        exc.__cause__ = err
        return exc

    async def aclose(self) -> None:
        """End the job's messages: wait briefly for those in flight, then close every connection.

        The engine half-closes each busy connection first: from then on its pod names no result
        (``runtime.filetransport``) and answers at once what it did name, which is settled (counted,
        noted) before the job ends. A message still unanswered after :data:`DRAIN_SECONDS` (a
        transform that hangs) is cancelled; its pod names nothing of it either.
        """
        self._closing = True
        for pod in self._pods.values():
            pod.waiting.clear()
            pod.half_close_busy()
        tasks = list(self._tasks)
        if tasks:
            _done, late = await asyncio.wait(tasks, timeout=DRAIN_SECONDS)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(BaseException):
                    await task
        for pod in self._pods.values():
            pod.close()
