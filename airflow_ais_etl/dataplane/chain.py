"""Pipelines in the data path: each object goes through a chain of ETLs' pods on one target.

Stage 1 reads the source the way its ETL says (its comm type, arg type and protocol); its result
is held in memory and pushed to the next ETL's pod on the same target, as AIS's pipelines deliver
it to the next stage (a ``PUT`` of the bytes, whatever that ETL's own comm type), and so on. Only
the last stage's result is written (atomically, or by direct put), never an intermediate object.
A chain of one ETL is exactly the single-ETL path. Offline (engine) and inline share this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from airflow_ais_etl.cluster.base import MembershipWatch
from airflow_ais_etl.dataplane.batcher import Batcher
from airflow_ais_etl.dataplane.comm import PodClient
from airflow_ais_etl.dataplane.filetransfer import FileTransfer
from airflow_ais_etl.dataplane.podcaps import PodCaps
from airflow_ais_etl.dataplane.storage.base import ObjInfo
from airflow_ais_etl.dataplane.storage.local import LocalBucket
from airflow_ais_etl.dataplane.transfer import SMALL_OBJECT, ObjectTransformer
from airflow_ais_etl.etl.constants import ARG_BYTES, HPULL, HPUSH, HREV
from airflow_ais_etl.etl.errors import AisEtlError, EtlNotFoundError, TransformError, ValidationError
from airflow_ais_etl.etl.msg import obj_timeout_of, to_wire
from airflow_ais_etl.etl.pipeline import pipeline_label
from airflow_ais_etl.etl.protocol import check_etl_args

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Sequence

    from airflow_ais_etl.cluster.base import Backend, BucketRef, PodEndpoint
    from airflow_ais_etl.dataplane.storage.base import Bucket
    from airflow_ais_etl.dataplane.transfer import DirectPutGrant
    from airflow_ais_etl.etl.msg import InitMsg

__all__ = ["Chain", "ChainTransformer", "ChainWatch", "msg_fingerprint", "open_transformer"]


def msg_fingerprint(msg: InitMsg) -> str:
    """Identify an ETL definition: a resumed job skips only results of the same definition."""
    fields = to_wire(msg)
    fields.pop("obj_timeout", None)  # how long a transform may take does not change its results
    wire = json.dumps(fields, sort_keys=True).encode()
    return hashlib.sha256(wire).hexdigest()[:16]


@dataclass(frozen=True)
class Chain:
    """The ETLs of one transform, first to last (one ETL: no pipeline)."""

    msgs: tuple[InitMsg, ...]

    @classmethod
    def of(cls, msg: InitMsg | Sequence[InitMsg]) -> Chain:
        msgs = (msg,) if not isinstance(msg, list | tuple) else tuple(msg)
        if not msgs:
            raise ValidationError("empty ETL pipeline: name at least one ETL")
        return cls(cast("tuple[InitMsg, ...]", msgs))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.msgs)

    @property
    def label(self) -> str:
        """``etl-1>>etl-2`` (AIS's CLI spelling), or the ETL's name."""
        return pipeline_label(self.names)

    @property
    def first(self) -> InitMsg:
        return self.msgs[0]

    @property
    def last(self) -> InitMsg:
        return self.msgs[-1]

    @property
    def journal_name(self) -> str:
        """Where the resume journal lives: the ETL's name, or the names joined as AIS packs them."""
        return ",".join(self.names)

    def fingerprint(self) -> str:
        """Identify the whole chain: its definitions in order (one ETL: that ETL's fingerprint)."""
        prints = [msg_fingerprint(m) for m in self.msgs]
        if len(prints) == 1:
            return prints[0]
        return hashlib.sha256(json.dumps(prints).encode()).hexdigest()[:16]

    def where(self, index: int) -> str:
        """Name stage ``index`` (0-based) in messages."""
        return f"stage {index + 1} ({self.msgs[index].name}) of pipeline {self.label}"

    def check(self) -> None:
        """Refuse, before any request, a later stage that cannot take the previous stage's bytes."""
        for i, msg in enumerate(self.msgs[1:], 1):
            if msg.arg_type != ARG_BYTES:
                raise ValidationError(
                    f"{self.where(i)} has arg type {msg.arg_type!r}, but a later stage receives the previous "
                    "stage's result as bytes (no file name or URL exists for it): init that ETL with the "
                    "default arg type, or put it first in the pipeline",
                    etl_name=msg.name,
                )

    def etl_args(self, etl_args: str) -> str:
        """Check ``etl_args`` against every stage's rules (each stage receives them, as in AIS)."""
        for msg in self.msgs:
            etl_args = check_etl_args(
                etl_args, protocol=msg.protocol, comm_type=msg.comm_type, etl_name=msg.name
            )
        return etl_args

    def endpoints(self, backend: Backend) -> list[list[PodEndpoint]]:
        """Return every stage's pods; each ETL must run, with a pod on every target of the first."""
        out = []
        for i, msg in enumerate(self.msgs):
            eps = backend.endpoints(msg.name)
            if not eps:
                where = f" ({self.where(i)})" if len(self.msgs) > 1 else ""
                raise EtlNotFoundError(
                    f"etl job {msg.name}{where} is not running (start it first)", etl_name=msg.name
                )
            out.append(eps)
        targets = {e.target_id for e in out[0]}
        for i, eps in enumerate(out[1:], 1):
            missing = sorted(targets - {e.target_id for e in eps})
            if missing:
                raise EtlNotFoundError(
                    f"{self.where(i)} has no pod on target(s) {', '.join(missing)}: restart it "
                    "(stop, then start) so that it runs on every target",
                    etl_name=self.msgs[i].name,
                )
        return out

    def watch(self, backend: Backend, on_change: Callable[[str], None]) -> ChainWatch:
        """Watch every ETL of the chain: a change or a stop of any of them aborts the job."""
        chain_watch = ChainWatch()

        def changed(name: str) -> Callable[[str], None]:
            def call(cause: str) -> None:
                chain_watch.changed.add(name)
                on_change(cause)

            return call

        try:
            for name in self.names:
                chain_watch.watches.append((name, backend.watch_membership(name, changed(name))))
        except BaseException:
            chain_watch.close()
            raise
        return chain_watch


class ChainWatch(MembershipWatch):
    """The watches of all ETLs of a chain as one: the earliest event of any of them comes first.

    ``changed`` names the ETLs whose pods or targets changed: a membership abort stops those (all
    of them when targets changed), never an ETL that merely shared the job.
    """

    def __init__(self) -> None:
        self.watches: list[tuple[str, MembershipWatch]] = []
        self.changed: set[str] = set()

    def earliest_event(self) -> tuple[float, str] | None:
        events = [(e, name) for name, w in self.watches if (e := w.earliest_event()) is not None]
        if not events:
            return None
        event, name = min(events)
        self.changed.add(name)
        return event

    def close(self) -> None:
        for _name, w in self.watches:
            with contextlib.suppress(Exception):
                w.close()


class _Held:
    """An intermediate result as the next stage's source, never a stored object.

    Up to :data:`SMALL_OBJECT` it stays in memory; a larger one goes to an anonymous temp file of
    this process (unlinked, mode 0600), so many large objects in flight do not exhaust memory.
    It can be read again from the start, so a request the retry policy re-sends is complete.
    """

    url = "pipeline://intermediate"

    def __init__(self) -> None:
        self.spool = tempfile.SpooledTemporaryFile(max_size=SMALL_OBJECT)  # closed by close()
        self.size = 0

    async def fill(self, resp: Any) -> _Held:
        """Store the pod's whole answer (read whole when small, streamed when large)."""
        try:
            if resp.content_length is not None and resp.content_length <= SMALL_OBJECT:
                data = await resp.read()
                self.spool.write(data)
                self.size = len(data)
                return self
            async for chunk in resp.iter_chunks():
                await asyncio.to_thread(self.spool.write, chunk)
                self.size += len(chunk)
        except BaseException:
            resp.close()
            self.close()
            raise
        return self

    def info(self, src: ObjInfo) -> ObjInfo:
        return ObjInfo(src.name, self.size, src.version)

    def read_bytes(self, name: str) -> bytes:
        self.spool.seek(0)
        return self.spool.read()

    def read_chunks(self, name: str, chunk_size: int) -> Iterator[bytes]:
        offset = 0
        while True:
            self.spool.seek(offset)
            chunk = self.spool.read(chunk_size)
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    def local_path(self, name: str) -> str | None:
        return None

    def close(self) -> None:
        self.spool.close()


def _pushed(msg: InitMsg) -> InitMsg:
    """A later stage receives bytes by ``PUT``: pull-type ETLs get them pushed, as in AIS pipelines."""
    return dataclasses.replace(msg, comm_type=HPUSH) if msg.comm_type in (HPULL, HREV) else msg


def _at_stage(exc: AisEtlError, chain: Chain, index: int, obj: str) -> TransformError:
    """Name the stage that failed; raise it ``from`` the original cause, so a vanished pod still reads as one."""
    err = TransformError(
        f"{chain.where(index)}: {getattr(exc, 'reason', str(exc))}",
        object_name=obj,
        status=getattr(exc, "status", None),
        etl_name=chain.msgs[index].name,
        target=getattr(exc, "target", ""),
        pod_name=getattr(exc, "pod_name", ""),
    )
    err.stage = chain.msgs[index].name  # type: ignore[attr-defined]
    return err


class ChainTransformer:
    """Send each object through every stage's pod on one target; write only the last result."""

    def __init__(
        self,
        chain: Chain,
        stages: list[ObjectTransformer],
        endpoints: list[list[PodEndpoint]],
    ) -> None:
        self.chain = chain
        self.stages = stages
        self.by_target = [{e.target_id: e for e in eps} for eps in endpoints]

    async def _intermediate(self, endpoint: PodEndpoint, info: ObjInfo) -> _Held:
        """Run all stages but the last; return the last intermediate result (the caller closes it)."""
        held: _Held | None = None
        for i, stage in enumerate(self.stages[:-1]):
            ep = self._ep(i, endpoint)
            try:
                if held is None:
                    resp = await stage.request(ep, info)
                else:
                    resp = await self._later(stage, held).request(ep, held.info(info))
                result = await _Held().fill(resp)
            except AisEtlError as exc:
                raise _at_stage(exc, self.chain, i, info.name) from exc.__cause__
            finally:
                if held is not None:
                    held.close()
            held = result
        assert held is not None
        return held

    def _later(self, stage: ObjectTransformer, held: _Held) -> ObjectTransformer:
        return ObjectTransformer(
            stage.client,
            stage.msg,
            cast("Bucket", held),
            stage.bucket_ref,
            etl_args=stage.etl_args,
            direct_put=stage.direct_put,
        )

    async def to_bytes(self, endpoint: PodEndpoint, info: ObjInfo) -> bytes:
        held = await self._intermediate(endpoint, info)
        last = len(self.stages) - 1
        try:
            return await self._later(self.stages[last], held).to_bytes(
                self._ep(last, endpoint), held.info(info)
            )
        except AisEtlError as exc:
            raise _at_stage(exc, self.chain, last, info.name) from exc.__cause__
        finally:
            held.close()

    async def to_bucket(
        self, endpoint: PodEndpoint, info: ObjInfo, dst: Bucket, dst_name: str
    ) -> tuple[int, int]:
        """Write the last stage's result atomically to ``dst`` (or let its pod deliver it)."""
        held = await self._intermediate(endpoint, info)
        last = len(self.stages) - 1
        try:
            return await self._later(self.stages[last], held).to_bucket(
                self._ep(last, endpoint), held.info(info), dst, dst_name
            )
        except AisEtlError as exc:
            raise _at_stage(exc, self.chain, last, info.name) from exc.__cause__
        finally:
            held.close()

    def _ep(self, index: int, endpoint: PodEndpoint) -> PodEndpoint:
        return self.by_target[index][endpoint.target_id]


@contextlib.asynccontextmanager
async def open_transformer(
    chain: Chain,
    src: Bucket,
    bucket_ref: BucketRef | None,
    endpoints: list[list[PodEndpoint]],
    *,
    request_timeout: float | None = None,
    limit: int = 64,
    etl_args: str = "",
    direct_put: DirectPutGrant | None = None,
    num_workers: int = 8,
) -> AsyncIterator[Any]:
    """Open one connection pool per stage and yield what sends objects through the whole chain.

    :param request_timeout: seconds per request for every stage (else each ETL's ``obj_timeout``)
    :param direct_put: the last stage's grant to deliver results itself
    :param num_workers: requests in flight per pod (the job's option; batches carry more objects)
    """
    async with contextlib.AsyncExitStack() as stack:
        stages = []
        for i, msg in enumerate(chain.msgs):
            timeout = request_timeout or obj_timeout_of(msg)
            client = await stack.enter_async_context(PodClient(request_timeout=timeout, limit_per_host=limit))
            caps = PodCaps(client)  # the pods' /health answers: asked once, for batches and files alike
            stack.push_async_callback(caps.aclose)
            batcher = _batcher(chain, client, bucket_ref, etl_args, direct_put, num_workers, caps)
            if batcher is not None:
                stack.push_async_callback(batcher.aclose)
            files = _file_transfer(chain, caps, src, bucket_ref, etl_args, num_workers, timeout)
            if files is not None:
                stack.push_async_callback(files.aclose)
            stages.append(
                ObjectTransformer(
                    client,
                    msg if i == 0 else _pushed(msg),
                    src,
                    bucket_ref,
                    etl_args=etl_args,
                    direct_put=direct_put if i == len(chain.msgs) - 1 else None,
                    batcher=batcher,
                    files=files,
                )
            )
        yield stages[0] if len(stages) == 1 else ChainTransformer(chain, stages, endpoints)


def _batcher(
    chain: Chain,
    client: PodClient,
    bucket_ref: BucketRef | None,
    etl_args: str,
    direct_put: DirectPutGrant | None,
    num_workers: int,
    caps: PodCaps,
) -> Batcher | None:
    """Batch small objects of a one-stage ETL of bytes (pods that do not accept it still get singles).

    hpush without direct put sends the objects in the batch; hpull sends pull batches, with or
    without direct put (the pod fetches each object and delivers its result itself).
    """
    msg = chain.first
    if len(chain.msgs) > 1 or bucket_ref is None or msg.arg_type != ARG_BYTES:
        return None
    if msg.comm_type == HPULL:
        return Batcher(client, bucket_ref, etl_args, requests_per_pod=num_workers, pull=True)
    if msg.comm_type != HPUSH or direct_put is not None:
        return None
    return Batcher(client, bucket_ref, etl_args, requests_per_pod=num_workers, caps=caps)


def _file_transfer(
    chain: Chain,
    caps: PodCaps,
    src: Bucket,
    bucket_ref: BucketRef | None,
    etl_args: str,
    num_workers: int,
    timeout: float,
) -> FileTransfer | None:
    """Let the pods read and write objects in place (the file transport; docs/protocol.md).

    Only for a one-stage ETL of bytes from a local source.

    Pods that take them say so (``/health``), and each result must go to a local bucket too
    (``FileTransfer.serves``); the ``url`` and ``fqn`` arg types keep their own meaning, over HTTP.
    """
    msg = chain.first
    if len(chain.msgs) > 1 or bucket_ref is None or not isinstance(src, LocalBucket):
        return None
    if msg.comm_type not in (HPUSH, HPULL, HREV) or msg.arg_type != ARG_BYTES:
        return None
    return FileTransfer(caps, msg, src, bucket_ref, etl_args, links_per_pod=num_workers, timeout=timeout)
