"""The offline engine: plan → dispatch → stream → write → count → abort, for every backend.

One engine serves the CLI, the Python API, the Airflow operators and both backends. It reads
source objects, sends each to the least-loaded target's pod with bounded in-flight work, writes
each result atomically, counts, reports progress, and aborts on membership changes, on a stop of
the ETL or on request (task kill) without leaving partial objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.dataplane.comm import PodClient
from airflow_ais_etl.dataplane.journal import Journal
from airflow_ais_etl.dataplane.storage import Bucket, ObjInfo, normalize_url, open_bucket
from airflow_ais_etl.etl.errors import (
    AbortError,
    AisEtlError,
    EtlNotFoundError,
    TransformError,
    ValidationError,
)
from airflow_ais_etl.etl.msg import ARG_FQN, HPULL, HREV, to_wire
from airflow_ais_etl.etl.naming import dest_name, expand_template, validate_object_name, validate_prefix

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Mapping

    from airflow_ais_etl.cluster.base import Backend, BucketRef, PodEndpoint
    from airflow_ais_etl.etl.msg import InitMsg

SMALL_OBJECT = 1 << 20
"""Objects up to this size are read and written whole; larger ones are streamed in chunks."""
STREAM_CHUNK = 1 << 20


@dataclass(frozen=True)
class OfflineOptions:
    """What to transform and how (every option is honoured)."""

    prefix: str = ""
    objects: tuple[str, ...] | None = None
    template: str | None = None
    ext: Mapping[str, str] | None = None
    prepend: str = ""
    dry_run: bool = False
    continue_on_error: bool = False
    request_timeout: float | None = None
    num_workers: int = 8
    """In-flight requests per target."""
    skip_existing: bool = False
    """Resume: skip objects whose destination holds this ETL's result for the same source version."""
    progress_interval: float = 30.0

    def validate(self) -> None:
        """Raise :class:`ValidationError` for options that cannot work together or are out of range."""
        chosen = [n for n, v in (("objects", self.objects), ("template", self.template)) if v]
        if len(chosen) > 1:
            raise ValidationError("give either an explicit object list or a template, not both")
        if self.prefix and chosen:
            raise ValidationError(
                f"prefix cannot be combined with {chosen[0]}: put the prefix into it instead"
            )
        if self.num_workers < 1 or self.num_workers > 1024:
            raise ValidationError(f"num_workers must be between 1 and 1024, got {self.num_workers}")
        if self.request_timeout is not None and self.request_timeout <= 0:
            raise ValidationError(f"request_timeout must be positive seconds, got {self.request_timeout}")
        if self.progress_interval <= 0:
            raise ValidationError(f"progress_interval must be positive seconds, got {self.progress_interval}")
        if self.prefix:
            validate_prefix(self.prefix)
        for name in self.objects or ():
            validate_object_name(name)
        for key, value in (self.ext or {}).items():
            if not key or not value:
                raise ValidationError(f"extension map entries must be non-empty, got {key!r}: {value!r}")


class JobControl:
    """A thread-safe handle to abort a running job (task kill, Ctrl-C) from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.cause: str | None = None
        self.stop_pods = False
        self._wake: Callable[[], object] | None = None

    def abort(self, cause: str, *, stop_pods: bool = False) -> None:
        """Abort the job with ``cause``; ``stop_pods`` also stops the ETL (membership changes)."""
        with self._lock:
            if self.cause is not None:
                return
            self.cause, self.stop_pods = cause, stop_pods
            wake = self._wake
        if wake:
            wake()

    def _bind(self, wake: Callable[[], object]) -> None:
        with self._lock:
            self._wake = wake
            pending = self.cause is not None
        if pending:
            wake()


@dataclass
class _TargetStats:
    objects: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    errors: int = 0
    in_flight: int = 0


@dataclass
class _Stats:
    etl: str
    src: str
    dst: str
    dry_run: bool
    started: float = field(default_factory=time.monotonic)
    planned_objects: int = 0
    planned_bytes: int = 0
    objects: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    skipped: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    targets: dict[str, _TargetStats] = field(default_factory=dict)
    state: str = "running"
    cause: str = ""

    def snapshot(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        done = self.objects + self.skipped + len(self.errors)
        rate = self.objects / elapsed
        remaining = self.planned_objects - done
        eta = remaining / rate if rate > 0 and self.state == "running" else (0.0 if remaining <= 0 else None)
        return {
            "etl": self.etl,
            "src": self.src,
            "dst": self.dst,
            "dry_run": self.dry_run,
            "state": self.state,
            "cause": self.cause,
            "planned_objects": self.planned_objects,
            "planned_bytes": self.planned_bytes,
            "objects": self.objects,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "skipped": self.skipped,
            "error_count": len(self.errors),
            "errors": list(self.errors),
            "targets": {
                tid: {
                    "objects": t.objects,
                    "bytes_in": t.bytes_in,
                    "bytes_out": t.bytes_out,
                    "errors": t.errors,
                }
                for tid, t in sorted(self.targets.items())
            },
            "elapsed": round(elapsed, 3),
            "rate_objects": round(rate, 2),
            "rate_bytes": round(self.bytes_in / elapsed, 1),
            "eta": None if eta is None else round(eta, 1),
        }


def plan(src: Bucket, options: OfflineOptions) -> list[ObjInfo]:
    """Return the source objects selected by ``options`` (explicit list, template or prefix)."""
    if options.objects:
        out = []
        for name in options.objects:
            info = src.stat(name)
            out.append(info if info is not None else ObjInfo(name, -1, ""))
        return out
    prefix = options.prefix
    if options.template:
        names = expand_template(options.template)
        if names is not None:
            return [info for name in names if (info := src.stat(name)) is not None]
        prefix = validate_prefix(options.template)
    return list(src.list(validate_prefix(prefix) if prefix else ""))


def job_fingerprint(msg: InitMsg) -> str:
    """Identify an ETL definition: a resumed job skips only results of the same definition."""
    wire = json.dumps(to_wire(msg), sort_keys=True).encode()
    return hashlib.sha256(wire).hexdigest()[:16]


class ObjectTransformer:
    """Send one object through one pod and write (or return) the result: shared by offline and inline."""

    def __init__(self, client: PodClient, msg: InitMsg, src: Bucket, bucket_ref: BucketRef | None) -> None:
        self.client = client
        self.msg = msg
        self.src = src
        self.bucket_ref = bucket_ref

    def _body(self, info: ObjInfo) -> bytes | Callable[[], AsyncIterator[bytes]] | None:
        """Return the request body: none for pulls and FQNs, bytes when small, a re-openable stream else."""
        if self.msg.comm_type in (HPULL, HREV) or self.msg.arg_type == ARG_FQN:
            return None
        if 0 <= info.size <= SMALL_OBJECT:
            return self.src.read_bytes(info.name)
        return lambda: _aiter_chunks(self.src, info.name)

    async def request(self, endpoint: PodEndpoint, info: ObjInfo) -> Any:
        fqn = None
        if self.msg.arg_type == ARG_FQN:
            fqn = self.src.local_path(info.name)
            if fqn is None:
                raise ValidationError(
                    f"arg type 'fqn' needs a source bucket on a local filesystem, not {self.src.url}",
                    etl_name=self.msg.name,
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
        )

    async def to_bytes(self, endpoint: PodEndpoint, info: ObjInfo) -> bytes:
        resp = await self.request(endpoint, info)
        data: bytes = await resp.read()
        return data

    async def to_bucket(self, endpoint: PodEndpoint, info: ObjInfo, dst: Bucket, dst_name: str) -> int:
        """Write the transformed object atomically to ``dst``; return its size.

        A small answer is read whole and stored right in the event loop: a thread hop per object
        costs more than writing a few KiB to the page cache (measured with bench/offline_bench.py).
        """
        resp = await self.request(endpoint, info)
        if resp.content_length is not None and resp.content_length <= SMALL_OBJECT:
            data = await resp.read()
            dst.write_bytes(dst_name, data)
            return len(data)
        writer = dst.writer(dst_name)
        written = 0
        try:
            async for chunk in resp.iter_chunks():
                writer.write(chunk)
                written += len(chunk)
            writer.commit()
        except BaseException:
            writer.discard()
            resp.close()
            raise
        return written


async def _aiter_chunks(src: Bucket, name: str) -> AsyncIterator[bytes]:
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


class _Job:
    def __init__(
        self,
        backend: Backend,
        msg: InitMsg,
        src: Bucket,
        dst_url: str,
        open_dst: Callable[[], Bucket],
        options: OfflineOptions,
        progress: Callable[[dict[str, Any]], None] | None,
        control: JobControl,
    ) -> None:
        self.backend = backend
        self.msg = msg
        self.src = src
        self.open_dst = open_dst
        """Opens (creates) the destination; a dry run never calls it, so it writes nothing anywhere."""
        self.options = options
        self.progress = progress
        self.control = control
        self.stats = _Stats(msg.name, src.url, dst_url, options.dry_run)
        self.failure: BaseException | None = None
        self._flushing: asyncio.Future[None] | None = None

    async def run(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        aborted = asyncio.Event()
        self.control._bind(lambda: loop.call_soon_threadsafe(aborted.set))
        items = await asyncio.to_thread(plan, self.src, self.options)
        self.stats.planned_objects = len(items)
        self.stats.planned_bytes = sum(max(i.size, 0) for i in items)
        if self.options.dry_run:
            return self._finish_dry_run(items)
        endpoints = self.backend.endpoints(self.msg.name)
        if not endpoints:
            raise EtlNotFoundError(
                f"etl job {self.msg.name} is not running (start it first)", etl_name=self.msg.name
            )
        dst = await asyncio.to_thread(self.open_dst)
        journal = Journal(dst, self.msg.name, job_fingerprint(self.msg), auto_flush=False)
        watch = self.backend.watch_membership(
            self.msg.name, lambda cause: self.control.abort(cause, stop_pods=True)
        )
        try:
            await asyncio.to_thread(dst.check_writable)
            await asyncio.to_thread(dst.clean_partials)
            done = await asyncio.to_thread(journal.load) if self.options.skip_existing else {}
            bucket_ref = await asyncio.to_thread(self.backend.bucket_ref, self.src.url)
            for ep in endpoints:
                self.stats.targets[ep.target_id] = _TargetStats()
            limit = max(64, self.options.num_workers)  # never below the in-flight requests per pod
            async with PodClient(
                request_timeout=self.options.request_timeout, limit_per_host=limit
            ) as client:
                transformer = ObjectTransformer(client, self.msg, self.src, bucket_ref)
                await self._dispatch(items, endpoints, transformer, dst, journal, done, aborted)
        finally:
            watch.close()
            if self._flushing is not None:
                with contextlib.suppress(Exception):
                    await self._flushing
            with contextlib.suppress(Exception):
                await asyncio.to_thread(journal.flush)
        return self._conclude()

    def _finish_dry_run(self, items: list[ObjInfo]) -> dict[str, Any]:
        for info in items:
            if info.size < 0:
                error = f"object {info.name} does not exist in {self.src.url}"
                self._record_error(info.name, "", error)
                if not self.options.continue_on_error and self.failure is None:
                    self.failure = TransformError(error, object_name=info.name, etl_name=self.msg.name)
                continue
            self.stats.objects += 1
            self.stats.bytes_in += info.size
        self.stats.state = "done"
        return self._conclude()

    async def _dispatch(
        self,
        items: list[ObjInfo],
        endpoints: list[PodEndpoint],
        transformer: ObjectTransformer,
        dst: Bucket,
        journal: Journal,
        done: Mapping[str, tuple[str, str]],
        aborted: asyncio.Event,
    ) -> None:
        queue = iter(items)
        width = len(endpoints) * self.options.num_workers
        stop = asyncio.Event()

        async def worker() -> None:
            for info in queue:
                if stop.is_set():
                    return
                await self._one(info, endpoints, transformer, dst, journal, done, stop)

        workers = [asyncio.create_task(worker()) for _ in range(width)]
        reporter = asyncio.create_task(self._report())
        all_done: asyncio.Future[Any] = asyncio.gather(*workers)
        abort_wait: asyncio.Future[Any] = asyncio.ensure_future(aborted.wait())
        try:
            await asyncio.wait([all_done, abort_wait], return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not all_done.done():
                for w in workers:
                    w.cancel()
                with contextlib.suppress(BaseException):
                    await all_done
            abort_wait.cancel()
            reporter.cancel()
            with contextlib.suppress(BaseException):
                await reporter
        if all_done.done() and not all_done.cancelled():
            error = all_done.exception()
            if error is not None and not isinstance(error, asyncio.CancelledError):
                raise error  # a bug in a worker, not an object error: never swallow it

    async def _one(
        self,
        info: ObjInfo,
        endpoints: list[PodEndpoint],
        transformer: ObjectTransformer,
        dst: Bucket,
        journal: Journal,
        done: Mapping[str, tuple[str, str]],
        stop: asyncio.Event,
    ) -> None:
        target_name = dest_name(info.name, self.options.ext, self.options.prepend)
        if info.size < 0:
            self._fail(info.name, "", f"object {info.name} does not exist in {self.src.url}", stop)
            return
        prior = done.get(info.name)
        if prior and prior == (info.version, target_name) and dst.exists(target_name):
            self.stats.skipped += 1
            return
        endpoint = min(endpoints, key=lambda e: self.stats.targets[e.target_id].in_flight)
        tstats = self.stats.targets[endpoint.target_id]
        tstats.in_flight += 1
        try:
            written = await transformer.to_bucket(endpoint, info, dst, target_name)
        except (AisEtlError, OSError) as exc:
            tstats.errors += 1
            self._fail(info.name, endpoint.target_id, str(exc), stop, exc)
            return
        finally:
            tstats.in_flight -= 1
        tstats.objects += 1
        tstats.bytes_in += info.size
        tstats.bytes_out += written
        self.stats.objects += 1
        self.stats.bytes_in += info.size
        self.stats.bytes_out += written
        journal.record(info.name, info.version, target_name)
        if journal.due() and (self._flushing is None or self._flushing.done()):
            self._flushing = asyncio.ensure_future(asyncio.to_thread(journal.flush))

    def _record_error(self, name: str, target: str, error: str) -> None:
        self.stats.errors.append({"object": name, "target": target, "error": error})

    def _fail(
        self, name: str, target: str, error: str, stop: asyncio.Event, exc: BaseException | None = None
    ) -> None:
        self._record_error(name, target, error)
        if not self.options.continue_on_error and self.failure is None:
            self.failure = exc or TransformError(
                error, object_name=name, etl_name=self.msg.name, target=target
            )
            stop.set()
            self.control.abort(f"object {name} failed")

    async def _report(self) -> None:
        if self.progress is None:
            return
        while True:
            await asyncio.sleep(self.options.progress_interval)
            self.progress(self.stats.snapshot())

    def _conclude(self) -> dict[str, Any]:
        if self.failure is not None:
            self.stats.state = "failed"
            self.stats.cause = str(self.failure)
        elif self.control.cause is not None:
            self.stats.state = "aborted"
            self.stats.cause = self.control.cause
        elif self.stats.state == "running":
            self.stats.state = "done"
        snap = self.stats.snapshot()
        if self.progress is not None:
            self.progress(snap)
        if self.failure is not None:
            _attach(self.failure, snap)
            raise self.failure
        if self.control.cause is not None:
            if self.control.stop_pods:
                with contextlib.suppress(Exception):
                    self.backend.stop_pods(self.msg.name)
            err = AbortError(
                f"etl job aborted: {self.control.cause}; {snap['objects']} of {snap['planned_objects']} "
                f"object(s) done, {snap['skipped']} skipped; no partial objects were left — "
                "run again with skip_existing to resume",
                etl_name=self.msg.name,
                cause=self.control.cause,
            )
            _attach(err, snap)
            raise err
        return snap


def _attach(exc: BaseException, stats: dict[str, Any]) -> None:
    with contextlib.suppress(AttributeError):
        exc.stats = stats  # type: ignore[attr-defined]


def run_offline(
    backend: Backend,
    msg: InitMsg,
    src: str,
    dst: str,
    options: OfflineOptions,
    *,
    progress: Callable[[dict[str, Any]], None] | None = None,
    control: JobControl | None = None,
    src_conn_id: str | None = None,
    dst_conn_id: str | None = None,
) -> dict[str, Any]:
    """Run one offline transform to completion and return its stats (a JSON-safe dict).

    Raises :class:`AbortError` (with ``.stats``) when aborted, or the first object's error unless
    ``continue_on_error``. Runs its own event loop: call it from a plain thread.
    """
    options.validate()
    src_bucket = open_bucket(src, conn_id=src_conn_id)
    dst_url = normalize_url(dst)
    if _same(src_bucket.url, dst_url) and not options.prepend and not options.ext:
        raise ValidationError(
            f"source and destination are the same bucket ({src_bucket.url}) and no --prepend/--ext is "
            "given: results would overwrite their sources; choose another destination"
        )

    def open_dst() -> Bucket:
        # Objects are not fsynced one by one: the journal syncs the file system once per batch
        # before it records the batch as done (see dataplane.journal), which keeps resume exact.
        return open_bucket(dst, conn_id=dst_conn_id, create=True, fsync=False)

    job = _Job(backend, msg, src_bucket, dst_url, open_dst, options, progress, control or JobControl())
    return asyncio.run(job.run())


def _same(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def select_names(items: Iterable[ObjInfo]) -> list[str]:
    """Return the names of planned objects (handy for dry runs and tests)."""
    return [i.name for i in items]
