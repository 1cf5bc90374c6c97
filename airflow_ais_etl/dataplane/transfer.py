"""Send one object through one pod and write (or return) the result: shared by offline and inline.

Small objects travel whole; larger ones stream in chunks from the source to the pod and from the
pod to an atomic writer, so no transform holds a large object in memory unless it needs to.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from airflow_ais_etl.dataplane.batcher import ALONE_HEADER, BATCH_OBJECT, Batcher, Delivered
from airflow_ais_etl.dataplane.filetransfer import FILE_BATCH_OBJECTS, FileTransfer
from airflow_ais_etl.dataplane.httpclient.filebody import FileBody
from airflow_ais_etl.dataplane.jobstats import Route
from airflow_ais_etl.dataplane.storage.local import LocalBucket
from airflow_ais_etl.etl.constants import ARG_FQN, HDR_DIRECT_PUT_LENGTH, HPULL, HREV, WS
from airflow_ais_etl.etl.errors import AisEtlError, TransformError, ValidationError

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence

    from airflow_ais_etl.cluster.base import BucketRef, PodEndpoint
    from airflow_ais_etl.dataplane.comm import PodClient
    from airflow_ais_etl.dataplane.storage.base import Bucket, ObjInfo
    from airflow_ais_etl.etl.msg import InitMsg

__all__ = ["SMALL_OBJECT", "STREAM_CHUNK", "ObjectTransformer"]

_Outcome = tuple[int, "int | Exception"]
"""An object's place in a take and its result's size, or its error (as ``to_bucket_many`` reports it)."""

BATCH_TAKE = 32
"""Objects the engine hands :meth:`ObjectTransformer.to_bucket_many` at once for pods that take
batches: they are sent together, with one wait, and batches from several takes fill up."""

SMALL_OBJECT = 1 << 20
"""Objects up to this size are read and written whole; larger ones are streamed in chunks."""
STREAM_CHUNK = 1 << 20


class DirectPutGrant(Protocol):
    """A job's permission for pods to deliver results themselves (the backend's, e.g. the local gateway)."""

    def url_for(self, target_id: str, dst_name: str) -> str:
        """Return the ``Ais-Node-Url`` value for result ``dst_name`` of a pod on ``target_id``."""
        ...


class ObjectTransformer:
    """Send objects of one source bucket through the pods of one ETL.

    :param etl_args: per-request arguments for every object (query ``etl_args``)
    :param direct_put: a grant that lets pods deliver results to the destination themselves
    """

    def __init__(
        self,
        client: PodClient,
        msg: InitMsg,
        src: Bucket,
        bucket_ref: BucketRef | None,
        *,
        etl_args: str = "",
        direct_put: DirectPutGrant | None = None,
        batcher: Batcher | None = None,
        files: FileTransfer | None = None,
    ) -> None:
        self.client = client
        self.msg = msg
        self.src = src
        self.bucket_ref = bucket_ref
        self.etl_args = etl_args
        self.direct_put = direct_put
        self.batcher = batcher
        """Sends small objects to pods that accept it many per request (``dataplane.batcher``)."""
        self.files = files
        """Lets pods that can read and write the objects in place do so (``dataplane.filetransfer``)."""

    def _body(self, info: ObjInfo) -> bytes | Callable[[], AsyncIterable[bytes]] | None:
        """Return the request body: none for pulls and FQNs, bytes when small, a re-openable stream else."""
        if self.msg.comm_type in (HPULL, HREV) or self.msg.arg_type == ARG_FQN:
            return None
        if 0 <= info.size <= SMALL_OBJECT:
            return self.src.read_bytes(info.name)
        path = self.src.local_path(info.name) if info.size > 0 else None
        if path is not None:
            return lambda: FileBody(path, info.size)  # sendfile where the connection allows it
        return lambda: _aiter_chunks(self.src, info.name)

    def _fqn(self, info: ObjInfo) -> str | None:
        """Return the object's local file name when the ETL's arg type is ``fqn``."""
        if self.msg.arg_type != ARG_FQN:
            return None
        fqn = self.src.local_path(info.name)
        if fqn is None:
            raise ValidationError(
                f"arg type 'fqn' needs a source bucket on a local filesystem, not {self.src.url}",
                etl_name=self.msg.name,
            )
        return fqn

    async def request(
        self, endpoint: PodEndpoint, info: ObjInfo, direct_put_url: str | None = None, extra_headers: str = ""
    ) -> Any:
        """Send ``info`` to the pod at ``endpoint`` and return its 2xx answer."""
        fqn = self._fqn(info)
        if self.msg.comm_type == WS:
            body = None if fqn else await asyncio.to_thread(self.src.read_bytes, info.name)
            return await self.client.ws.transform(
                endpoint,
                obj=info.name,
                body=body,
                fqn=fqn,
                etl_args=self.etl_args,
                direct_put_url=direct_put_url,
            )
        return await self.client.transform(
            endpoint,
            comm_type=self.msg.comm_type,
            arg_type=self.msg.arg_type,
            bucket_ref=self.bucket_ref,
            obj=info.name,
            body=self._body(info),
            size=info.size if info.size >= 0 else None,
            fqn=fqn,
            protocol=self.msg.protocol,
            etl_args=self.etl_args,
            direct_put_url=direct_put_url,
            extra_headers=extra_headers,
        )

    async def to_bytes(self, endpoint: PodEndpoint, info: ObjInfo) -> bytes:
        """Return the transformed object whole."""
        resp = await self.request(endpoint, info)
        data: bytes = await resp.read()
        return data

    async def to_bucket(
        self, endpoint: PodEndpoint, info: ObjInfo, dst: Bucket, dst_name: str
    ) -> tuple[int, int]:
        """Write the transformed object atomically to ``dst``; return its size and how it got there.

        Pods that read and write the objects in place do (``dataplane.filetransfer``): no byte through the
        engine. With a direct-put grant the pod PUTs the result to the target itself and answers 204 (the
        engine carries no result bytes); a pod that cannot answers 200 with the result as usual.
        A small answer is read whole and, in a local directory, stored right in the event loop: a
        thread hop per object costs more than writing a few KiB to the page cache (measured with
        bench/offline_bench.py). An object store's uploads run in threads, several at once.
        """
        files = self.files
        if files is not None and (files.known_to_serve(endpoint, dst) or await files.serves(endpoint, dst)):
            size = await files.to_bucket(endpoint, info, dst, dst_name)  # type: ignore[arg-type]
            if size is not None:
                return size, Route.FILE | (Route.DIRECT if self.direct_put else Route.ENGINE)
        batcher = self.batcher
        if batcher is None:
            return await self._alone(endpoint, info, dst, dst_name)
        if _batchable(info) and await batcher.accepts(endpoint):
            by_engine, by_pod, _alone = await self._through_batches(endpoint, [info], dst, [dst_name], [0])
            for outcomes, route in ((by_engine, Route.ENGINE), (by_pod, Route.DIRECT)):
                if outcomes:
                    outcome = outcomes[0][1]
                    if isinstance(outcome, Exception):
                        raise outcome
                    return outcome, route
            return await self._on_its_own(endpoint, info, dst, dst_name)  # its batch failed as a whole
        async with batcher.request_slot(endpoint):
            return await self._alone(endpoint, info, dst, dst_name)

    async def _through_batches(
        self,
        endpoint: PodEndpoint,
        infos: list[ObjInfo],
        dst: Bucket,
        dst_names: list[str],
        indices: list[int],
    ) -> tuple[list[_Outcome], list[_Outcome], list[int]]:
        """Send objects ``indices`` in the pod's batches, all at once (no task per object).

        Return the outcomes of those the engine wrote, of those the pod delivered by direct put, and
        the indices of those whose batch failed as a whole (each then goes on its own). A small
        answer is stored right in the event loop for a local directory: a thread hop per object
        costs more than writing a few KiB to the page cache (bench/offline_bench.py).
        """
        batcher = self.batcher
        assert batcher is not None
        by_engine: list[_Outcome] = []
        by_pod: list[_Outcome] = []
        alone: list[int] = []
        sent: list[tuple[int, asyncio.Future[object]]] = []
        for i in indices:
            try:
                data = self._batched_data(endpoint, infos[i], dst_names[i])
            except (AisEtlError, OSError) as exc:  # e.g. the source vanished since the listing
                by_engine.append((i, exc))
                continue
            sent.append((i, batcher.submit(endpoint, infos[i].name, data)))
        verdicts = await asyncio.gather(*(fut for _, fut in sent), return_exceptions=True)
        local = isinstance(dst, LocalBucket)

        async def finish(i: int, verdict: object) -> None:
            outcomes = by_pod if isinstance(verdict, Delivered) else by_engine
            try:
                if isinstance(verdict, Delivered):
                    check = (dst, dst_names[i], infos[i].name, str(verdict))
                    size = (
                        _check_delivered(*check)
                        if local
                        else await asyncio.to_thread(_check_delivered, *check)
                    )
                elif isinstance(verdict, bytes):
                    await _store(dst, dst_names[i], verdict)
                    size = len(verdict)
                elif isinstance(verdict, BaseException):
                    raise verdict  # the object's own error (a bug goes on up)
                else:
                    alone.append(i)
                    return
            except (AisEtlError, OSError) as exc:
                outcomes.append((i, exc))
            else:
                outcomes.append((i, size))

        answered = [(i, verdict) for (i, _), verdict in zip(sent, verdicts, strict=True)]
        if local:  # nothing to wait for: one after another, no task each
            for i, verdict in answered:
                await finish(i, verdict)
        else:  # an object store's checks and uploads wait on the network: side by side
            await asyncio.gather(*(finish(i, verdict) for i, verdict in answered))
        return by_engine, by_pod, alone

    async def _on_its_own(
        self, endpoint: PodEndpoint, info: ObjInfo, dst: Bucket, dst_name: str
    ) -> tuple[int, int]:
        """Send an object whose batch failed as a whole in a request of its own, which decides it."""
        assert self.batcher is not None
        async with self.batcher.request_slot(endpoint):
            return await self._alone(endpoint, info, dst, dst_name, ALONE_HEADER)

    def objects_per_take(self, dst: Bucket) -> int:
        """How many objects the engine hands :meth:`to_bucket_many` at once (1: one at a time).

        Only where the file transport or the pods' batches may carry them: they then share
        messages, and one wait.
        """
        if self.files is not None and isinstance(dst, LocalBucket):
            return FILE_BATCH_OBJECTS
        return BATCH_TAKE if self.batcher is not None else 1

    async def to_bucket_many(
        self,
        endpoint: PodEndpoint,
        infos: list[ObjInfo],
        dst: Bucket,
        dst_names: list[str],
        report: Callable[[Sequence[tuple[int, int | Exception]], int], None],
    ) -> None:
        """:meth:`to_bucket` of each object, in one wait per message when the pod reads and writes them in place.

        ``report(outcomes, route)`` runs as soon as objects are written (or failed), with no wait
        in between: each outcome is an object's index and its result's size, or its error;
        ``route`` says how the written ones got there. A bug is raised.
        """
        files = self.files
        rest: Sequence[int] = range(len(infos))
        if files is not None and (files.known_to_serve(endpoint, dst) or await files.serves(endpoint, dst)):
            route = Route.FILE | (Route.DIRECT if self.direct_put else Route.ENGINE)
            rest = await files.to_bucket_many(
                endpoint,
                infos,
                dst,  # type: ignore[arg-type]
                dst_names,
                lambda outcomes: report(outcomes, route),
            )

        alone: list[int] = []
        batcher = self.batcher
        if rest and batcher is not None and await batcher.accepts(endpoint):
            small = [i for i in rest if _batchable(infos[i])]
            if small:
                by_engine, by_pod, alone = await self._through_batches(endpoint, infos, dst, dst_names, small)
                for outcomes, route in ((by_engine, Route.ENGINE), (by_pod, Route.DIRECT)):
                    if outcomes:
                        report(outcomes, route)
                rest = [i for i in rest if not _batchable(infos[i])]

        async def one(i: int, on_its_own: bool) -> None:  # over HTTP, in a request of its own
            try:
                if on_its_own:
                    size, route = await self._on_its_own(endpoint, infos[i], dst, dst_names[i])
                else:
                    size, route = await self.to_bucket(endpoint, infos[i], dst, dst_names[i])
            except (AisEtlError, OSError) as exc:
                report([(i, exc)], Route.ENGINE)
            else:
                report([(i, size)], route)

        if rest or alone:
            await asyncio.gather(*(one(i, False) for i in rest), *(one(i, True) for i in alone))

    def _batched_data(self, endpoint: PodEndpoint, info: ObjInfo, dst_name: str) -> bytes:
        """An object's data in a batch: its bytes, or for a pull batch where its result goes (``Ais-Node-Url``)."""
        if self.batcher is None or not self.batcher.pull:
            return self.src.read_bytes(info.name)
        return self.direct_put.url_for(endpoint.target_id, dst_name).encode() if self.direct_put else b""

    @property
    def objects_per_worker(self) -> int:
        """How many objects per ``num_workers`` slot the engine may keep in flight (see dataplane.batcher)."""
        carriers = (self.batcher, self.files)
        return max([1, *(c.objects_per_worker for c in carriers if c is not None)])

    async def _alone(
        self, endpoint: PodEndpoint, info: ObjInfo, dst: Bucket, dst_name: str, alone: str = ""
    ) -> tuple[int, int]:
        """Send one object in a request of its own and write (or check the delivery of) its result."""
        node_url = self.direct_put.url_for(endpoint.target_id, dst_name) if self.direct_put else None
        resp = await self.request(endpoint, info, node_url, alone)
        if resp.status == 204 and node_url:
            await resp.read()
            return await asyncio.to_thread(_delivered, resp, dst, dst_name, info.name), Route.DIRECT
        size = await self._write(resp, dst, dst_name)
        return size, Route.ENGINE

    async def _write(self, resp: Any, dst: Bucket, dst_name: str) -> int:
        if resp.content_length is not None and resp.content_length <= SMALL_OBJECT:
            data = await resp.read()
            await _store(dst, dst_name, data)
            return len(data)
        writer = dst.writer(dst_name)
        try:
            written = await resp.drain_into(writer.write)  # straight from the socket buffer (or a spool)
            if isinstance(dst, LocalBucket):
                writer.commit()
            else:
                await asyncio.to_thread(writer.commit)  # an object store's upload
        except BaseException:
            writer.discard()
            resp.close()
            raise
        return written


def _batchable(info: ObjInfo) -> bool:
    """Whether an object may travel in a batch (its size known and small)."""
    return 0 <= info.size <= BATCH_OBJECT


async def _store(dst: Bucket, dst_name: str, data: bytes) -> None:
    """Store a whole result: in the event loop for a local directory (a thread hop per object costs
    more than a page-cache write), in a thread for an object store, whose upload would stop the loop
    and every other object's with it."""
    if isinstance(dst, LocalBucket):
        dst.write_bytes(dst_name, data)
    else:
        await asyncio.to_thread(dst.write_bytes, dst_name, data)


def _delivered(resp: Any, dst: Bucket, dst_name: str, obj: str) -> int:
    """Check a direct put: the destination must now hold as many bytes as the pod says it delivered."""
    return _check_delivered(dst, dst_name, obj, resp.headers.get(HDR_DIRECT_PUT_LENGTH))


def _check_delivered(dst: Bucket, dst_name: str, obj: str, claimed: str | None) -> int:
    """Return the size of the delivered object; raise :class:`TransformError` if it is missing or another length."""
    info = dst.stat(dst_name)
    if info is None or (claimed is not None and claimed.isdigit() and int(claimed) != info.size):
        found = "no object" if info is None else f"{info.size} byte(s)"
        raise TransformError(
            f"pod answered 204 (delivered by direct put, {claimed} byte(s)) for {obj!r}, "
            f"but {dst.url} holds {found} at {dst_name!r}",
            object_name=obj,
            status=204,
        )
    return info.size


async def _aiter_chunks(src: Bucket, name: str) -> AsyncIterator[bytes]:
    """Stream an object's chunks, reading each in a thread so the event loop never blocks on disk."""
    chunks = src.read_chunks(name, STREAM_CHUNK)
    try:
        while True:
            chunk = await asyncio.to_thread(next, chunks, None)
            if chunk is None:
                return
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()
