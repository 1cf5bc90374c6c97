"""The offline engine: plan → dispatch → stream → write → count → abort, for every backend.

One engine serves the CLI, the Python API, the Airflow operators and both backends. It reads
source objects, sends each to the least-loaded target's pod with bounded in-flight work, writes
each result atomically, counts, reports progress, and aborts on membership changes, on a stop of
the ETL or on request (task kill) without leaving partial objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.dataplane.budget import ByteBudget
from airflow_ais_etl.dataplane.chain import Chain, open_transformer
from airflow_ais_etl.dataplane.firstcause import WatchCauses, cause_before
from airflow_ais_etl.dataplane.gcquiet import quiet_collector
from airflow_ais_etl.dataplane.jobcontrol import JobControl
from airflow_ais_etl.dataplane.jobend import (
    abort_error,
    attach,
    cancel_unfinished,
    raise_worker_bug,
    settle_state,
)
from airflow_ais_etl.dataplane.jobstats import JobState, JobStats, TargetStats
from airflow_ais_etl.dataplane.journal import FLUSH_SECONDS, Journal
from airflow_ais_etl.dataplane.options import OfflineOptions
from airflow_ais_etl.dataplane.overlap import check_separate
from airflow_ais_etl.dataplane.planning import Feed, in_shard, select
from airflow_ais_etl.dataplane.resumeindex import ResumeIndex
from airflow_ais_etl.dataplane.storage.opener import open_bucket
from airflow_ais_etl.dataplane.storage.urls import normalize_url
from airflow_ais_etl.etl.errors import AbortError, AisEtlError, TransformError
from airflow_ais_etl.etl.naming import dest_name

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from airflow_ais_etl.cluster.base import Backend, MembershipWatch, PodEndpoint
    from airflow_ais_etl.dataplane.storage.base import Bucket, ObjInfo
    from airflow_ais_etl.etl.msg import InitMsg

__all__ = ["JobControl", "OfflineOptions", "job_fingerprint", "plan", "run_offline"]


def plan(src: Bucket, options: OfflineOptions) -> Iterator[ObjInfo]:
    """Yield the source objects selected by ``options`` lazily (explicit list, template or prefix; shard)."""
    return select(
        src, prefix=options.prefix, objects=options.objects, template=options.template, shard=options.shard
    )


def job_fingerprint(msg: InitMsg | Sequence[InitMsg]) -> str:
    """Identify an ETL definition (or a pipeline's chain): a resumed job skips only its own results."""
    return Chain.of(msg).fingerprint()


@dataclass(frozen=True)
class _Run:
    """What every worker of one dispatch shares."""

    endpoints: list[PodEndpoint]
    transformer: Any
    """An ObjectTransformer, or a ChainTransformer for a pipeline (same interface)."""
    dst: Bucket
    journal: Journal
    done: ResumeIndex
    """What earlier runs wrote (empty unless resuming)."""
    stop: asyncio.Event
    """Set when an object failed and the job does not continue on errors."""
    budget: ByteBudget[PodEndpoint]
    """Bytes in flight per target (dataplane.budget): picks each object's target."""


class _Job:
    """One offline transform, from plan to result (or to the error that ends it)."""

    def __init__(
        self,
        backend: Backend,
        chain: Chain,
        src: Bucket,
        dst_url: str,
        open_dst: Callable[[], Bucket],
        options: OfflineOptions,
        progress: Callable[[dict[str, Any]], None] | None,
        control: JobControl,
    ) -> None:
        self.backend = backend
        self.chain = chain
        self.src = src
        self.open_dst = open_dst
        """Opens (creates) the destination; a dry run never calls it, so it writes nothing anywhere."""
        self.options = options
        self.progress = progress
        self.control = control
        self.stats = JobStats(chain.label, src.url, dst_url, options.dry_run)
        self.failure: BaseException | None = None
        self._failed_at = 0.0
        self._flushing: asyncio.Future[None] | None = None
        self._changed: set[str] = set()
        """The ETLs whose membership changed (a membership abort stops their pods)."""

    async def run(self) -> dict[str, Any]:
        aborted = self._abort_event()
        self.chain.check()  # a pipeline that cannot work fails before the source is listed
        items = await self._plan()
        try:
            return await self._run_planned(items, aborted)
        finally:
            items.close()

    async def _run_planned(self, items: Feed, aborted: asyncio.Event) -> dict[str, Any]:
        if self.options.dry_run:
            return await self._finish_dry_run(items)
        endpoints = self.chain.endpoints(self.backend)
        dst = await asyncio.to_thread(self.open_dst)
        journal = Journal(dst, self.chain.journal_name, self.chain.fingerprint(), auto_flush=False)
        seen = WatchCauses()
        watch = self.chain.watch(self.backend, lambda cause: self._cluster_changed(cause, seen))
        self._changed = watch.changed
        try:
            done = await self._prepare_destination(dst, journal)
            await self._transform(items, endpoints, dst, journal, done, aborted)
            await asyncio.to_thread(self._report_first_event, watch, seen)
        finally:
            watch.close()
            await self._flush(journal)
        return self._conclude()

    # ---------------------------------------------------------------- the steps of run
    def _cluster_changed(self, cause: str, seen: WatchCauses) -> None:
        seen.seen(cause)
        self.control.abort(cause, stop_pods=True)

    def _report_first_event(self, watch: MembershipWatch, seen: WatchCauses) -> None:
        """When an object failed, report the cluster event behind it instead, if that came first."""
        if self.failure is None:
            return
        cause = cause_before(self.failure, self._failed_at, watch, seen)
        if cause is not None:
            self.failure = None
            self.control.abort(cause, stop_pods=True, replace=True)

    def _abort_event(self) -> asyncio.Event:
        """Return an event of this loop that an abort from any thread sets."""
        loop = asyncio.get_running_loop()
        aborted = asyncio.Event()
        self.control._bind(lambda: loop.call_soon_threadsafe(aborted.set))
        return aborted

    async def _plan(self) -> Feed:
        """Start listing (planned counters grow as it goes: ``listing`` until it ends)."""
        items = Feed(plan(self.src, self.options), self.stats)
        await items.prime()
        return items

    async def _prepare_destination(self, dst: Bucket, journal: Journal) -> ResumeIndex:
        """Check that ``dst`` is writable, drop what killed writers left, and load earlier runs' notes."""
        await asyncio.to_thread(dst.check_writable)
        await asyncio.to_thread(dst.clean_partials)
        if not self.options.skip_existing:
            return ResumeIndex()
        return await asyncio.to_thread(journal.load_index, lambda name: in_shard(name, self.options.shard))

    async def _transform(
        self,
        items: Feed,
        endpoints: list[list[PodEndpoint]],
        dst: Bucket,
        journal: Journal,
        done: ResumeIndex,
        aborted: asyncio.Event,
    ) -> None:
        """Open one connection pool for the whole job and dispatch every planned object through it."""
        chain = self.chain
        grant = self.backend.grant(chain.first.name, self.src.url)  # pods read the source only meanwhile
        bucket_ref = await asyncio.to_thread(grant.__enter__)
        put_grant = None
        try:
            for ep in endpoints[0]:
                self.stats.targets[ep.target_id] = TargetStats()
            etl_args = chain.etl_args(self.options.etl_args)
            if chain.last.direct_put:
                put_grant = await asyncio.to_thread(
                    self.backend.direct_put_grant, chain.last.name, dst.url, dst.conn_id
                )
            async with open_transformer(
                chain,
                self.src,
                bucket_ref,
                endpoints,
                request_timeout=self.options.request_timeout,
                limit=max(64, self.options.num_workers),  # never below the in-flight requests per pod
                etl_args=etl_args,
                direct_put=put_grant,
                num_workers=self.options.num_workers,
            ) as transformer:
                budget = ByteBudget(endpoints[0], self.options.bytes_in_flight, key=lambda e: e.target_id)
                run = _Run(endpoints[0], transformer, dst, journal, done, asyncio.Event(), budget)
                items.skip = (
                    (lambda info: self._done_before(info, run)) if done else None
                )  # beside the listing
                await self._dispatch(items, run, aborted)
        finally:
            if put_grant is not None:  # first thing after an abort: pods can no longer deliver
                await asyncio.to_thread(put_grant.revoke)
            await asyncio.to_thread(grant.__exit__, None, None, None)

    async def _flush(self, journal: Journal) -> None:
        """Wait for a flush in progress, then flush what is left (best effort: a lost note redoes work)."""
        if self._flushing is not None:
            with contextlib.suppress(Exception):
                await self._flushing
        with contextlib.suppress(Exception):
            await asyncio.to_thread(journal.flush)

    async def _finish_dry_run(self, items: Feed) -> dict[str, Any]:
        while (info := await self._next(items)) is not None:
            if info.size < 0:
                error = f"object {info.name} does not exist in {self.src.url}"
                self.stats.record_error(info.name, "", error)
                if not self.options.continue_on_error and self.failure is None:
                    self.failure = TransformError(error, object_name=info.name, etl_name=self.chain.label)
                continue
            self.stats.objects += 1
            self.stats.bytes_in += info.size
        self.stats.state = JobState.DONE
        return self._conclude()

    # ---------------------------------------------------------------- dispatch
    async def _next(self, items: Feed, stop: asyncio.Event | None = None) -> ObjInfo | None:
        """Return the next planned object; a listing that breaks fails the job like an object would."""
        try:
            return await items.next()
        except (AisEtlError, OSError) as exc:
            if self.failure is None:
                self.failure, self._failed_at = exc, time.time()
                self.control.abort(f"listing {self.src.url} failed")
            if stop is not None:
                stop.set()
            return None

    async def _dispatch(self, items: Feed, run: _Run, aborted: asyncio.Event) -> None:
        """Run ``num_workers`` workers per target over one feed until it is empty or the job aborts."""

        per_take = getattr(run.transformer, "objects_per_take", None)
        take = per_take(run.dst) if per_take is not None else 1  # a worker's unit: a message's worth

        async def worker() -> None:
            while not run.stop.is_set() and (info := await self._next(items, run.stop)) is not None:
                if take > 1:
                    await self._many([info, *items.take_ready(take - 1)], run, take)
                else:
                    await self._one(info, run)

        per_slot = getattr(run.transformer, "objects_per_worker", 1)  # batches: more objects, same requests
        in_flight = len(run.endpoints) * self.options.num_workers * per_slot
        workers = [asyncio.create_task(worker()) for _ in range(max(1, -(-in_flight // take)))]
        reporter = asyncio.create_task(self._report())
        flusher = asyncio.create_task(self._flush_periodically(run.journal))
        all_done: asyncio.Future[Any] = asyncio.gather(*workers)
        abort_wait: asyncio.Future[Any] = asyncio.ensure_future(aborted.wait())
        try:
            await asyncio.wait([all_done, abort_wait], return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_unfinished(workers, all_done)
            abort_wait.cancel()
            for task in (reporter, flusher):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        raise_worker_bug(all_done)

    async def _one(self, info: ObjInfo, run: _Run) -> None:
        """Transform one object on the least-loaded target, or skip it, or record why it failed."""
        if not (todo := self._to_do([info], run)):
            return
        target_name = todo[0][1]
        endpoint = await run.budget.acquire(info.size)
        tstats = self.stats.targets[endpoint.target_id]
        tstats.in_flight += 1
        try:
            written, route = await run.transformer.to_bucket(endpoint, info, run.dst, target_name)
        except (AisEtlError, OSError) as exc:
            tstats.errors += 1
            self._fail(info.name, endpoint.target_id, str(exc), run.stop, exc)
            return
        finally:
            tstats.in_flight -= 1
            run.budget.release(endpoint, info.size)
        self.stats.record_done(tstats, info.size, written, route=route)
        self._note(run.journal, info, target_name)

    async def _many(self, infos: list[ObjInfo], run: _Run, full: int) -> None:
        """:meth:`_one` for several objects: one admission per target and one wait per message of them.

        Each round admits the objects left to the least-loaded target, as many as fit there, then
        the rest to other targets while they have room now; it waits for budget only while it holds
        none (like :meth:`_one`): objects that do not fit go in the next round, after this round's
        objects gave theirs back.
        """
        todo = self._to_do(infos, run)
        while todo and not run.stop.is_set():
            groups: list[tuple[PodEndpoint, list[ObjInfo], list[str], int]] = []
            try:
                todo = await self._admit(todo, run, groups, full)
                sends = [
                    run.transformer.to_bucket_many(
                        ep, got, run.dst, names, self._reporter(run, ep, got, names)
                    )
                    for ep, got, names, _total in groups
                ]
                await (sends[0] if len(sends) == 1 else asyncio.gather(*sends))
            finally:
                for endpoint, got, _names, total in groups:
                    self.stats.targets[endpoint.target_id].in_flight -= len(got)
                    run.budget.release_many(endpoint, total, len(got))

    def _reporter(
        self, run: _Run, endpoint: PodEndpoint, infos: list[ObjInfo], names: list[str]
    ) -> Callable[[Sequence[tuple[int, int | Exception]], int], None]:
        """Count and note the objects of a batch the moment they are written, or record their errors.

        ``report(outcomes, route)``: each outcome is an object's index and its result's size (it
        got there by ``route``) or its error; the written ones are counted and noted together.
        """
        tstats = self.stats.targets[endpoint.target_id]

        def report(outcomes: Sequence[tuple[int, int | Exception]], route: int) -> None:
            notes: list[tuple[str, str, str]] = []
            size_in = size_out = 0
            for i, outcome in outcomes:
                if isinstance(outcome, Exception):
                    tstats.errors += 1
                    self._fail(infos[i].name, endpoint.target_id, str(outcome), run.stop, outcome)
                    continue
                info = infos[i]
                size_in += info.size
                size_out += outcome
                notes.append((info.name, info.version, names[i]))
            if notes:
                self.stats.record_done(tstats, size_in, size_out, route=route, count=len(notes))
                if run.journal.record_many(notes):
                    self._start_flush(run.journal)

        return report

    async def _admit(
        self,
        todo: list[tuple[ObjInfo, str]],
        run: _Run,
        groups: list[tuple[PodEndpoint, list[ObjInfo], list[str], int]],
        full: int,
    ) -> list[tuple[ObjInfo, str]]:
        """Give objects their targets into ``groups`` (endpoint, objects, names, bytes); return those left over.

        ``full`` objects make a message; fewer (a small job, the end of a listing) are shared out
        over the targets, so a job of a few objects still spreads.
        """
        share = len(todo) if len(todo) >= full else -(-len(todo) // len(run.endpoints))
        while todo:
            sizes = [info.size for info, _name in todo[:share]]
            if groups:
                taken = run.budget.try_acquire_leading(sizes)
                if taken is None:
                    return todo
            else:
                taken = await run.budget.acquire_leading(sizes)
            endpoint, n = taken
            admitted, todo = todo[:n], todo[n:]
            groups.append(
                (endpoint, [info for info, _ in admitted], [name for _, name in admitted], sum(sizes[:n]))
            )
            self.stats.targets[endpoint.target_id].in_flight += n
        return todo

    def _to_do(self, infos: list[ObjInfo], run: _Run) -> list[tuple[ObjInfo, str]]:
        """Pair ``infos`` with their destination names, leaving out the failed (missing) and the
        skipped (done before) ones."""
        ext, prepend = self.options.ext, self.options.prepend
        if not (ext or prepend or run.done) and min(info.size for info in infos) >= 0:
            return [(info, info.name) for info in infos]  # no renames, nothing to skip: a check per take
        todo = []
        for info in infos:
            target_name = dest_name(info.name, ext, prepend)
            if info.size < 0:
                self._fail(info.name, "", f"object {info.name} does not exist in {self.src.url}", run.stop)
            elif self._done_before(info, run, target_name):
                self.stats.skipped += 1
            else:
                todo.append((info, target_name))
        return todo

    def _done_before(self, info: ObjInfo, run: _Run, target: str | None = None) -> bool:
        """Tell whether an earlier run wrote this object's result, and the result is still there."""
        if not run.done or info.size < 0:
            return False
        target = target or dest_name(info.name, self.options.ext, self.options.prepend)
        return run.done.has(info.name, info.version, target) and run.dst.exists(target)

    def _note(self, journal: Journal, info: ObjInfo, target_name: str) -> None:
        """Note a written object; flush the journal in a thread when a batch is due (one at a time)."""
        if journal.record(info.name, info.version, target_name):
            self._start_flush(journal)

    def _start_flush(self, journal: Journal) -> None:
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(asyncio.to_thread(journal.flush))

    async def _flush_periodically(self, journal: Journal) -> None:
        """Flush notes at least every :data:`FLUSH_SECONDS`, so a killed job redoes little."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            if journal.has_pending():
                self._start_flush(journal)

    def _fail(
        self, name: str, target: str, error: str, stop: asyncio.Event, exc: BaseException | None = None
    ) -> None:
        self.stats.record_error(name, target, error, stage=getattr(exc, "stage", ""))
        if not self.options.continue_on_error and self.failure is None:
            self.failure = exc or TransformError(
                error, object_name=name, etl_name=self.chain.label, target=target
            )
            self._failed_at = time.time()
            stop.set()
            self.control.abort(f"object {name} failed")

    async def _report(self) -> None:
        if self.progress is None:
            return
        while True:
            await asyncio.sleep(self.options.progress_interval)
            self.progress(self.stats.snapshot())

    # ---------------------------------------------------------------- result
    def _conclude(self) -> dict[str, Any]:
        """Settle the final state, report it once more, and return it or raise what ended the job."""
        settle_state(self.stats, self.failure, self.control.cause)
        snap = self.stats.snapshot()
        if self.progress is not None:
            self.progress(snap)
        if self.failure is not None:
            attach(self.failure, snap)
            raise self.failure
        if self.control.cause is not None:
            raise self._abort_error(self.control.cause, snap)
        return snap

    def _abort_error(self, cause: str, snap: dict[str, Any]) -> AbortError:
        """Stop the pods when membership changed, and say how far the job got and how to resume."""
        for name in sorted(self._changed) if self.control.stop_pods else ():  # pods still recorded
            with contextlib.suppress(Exception):  # (a removal or a stop already ended them)
                if self.backend.endpoints(name):
                    self.backend.abort(name, cause)
        return abort_error(cause, snap, self.chain.label)


def run_offline(
    backend: Backend,
    msg: InitMsg | Sequence[InitMsg],
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

    ``msg`` is one ETL, or a pipeline's chain of ETLs (first to last; ``dataplane.chain``).

    Raises :class:`AbortError` (with ``.stats``) when aborted, or the first object's error unless
    ``continue_on_error``. Runs its own event loop: call it from a plain thread.
    """
    options.validate()
    src_bucket = open_bucket(src, conn_id=src_conn_id)
    dst_url = normalize_url(dst)
    check_separate(src_bucket.url, dst_url, same_connection=src_conn_id == dst_conn_id)

    def open_dst() -> Bucket:
        # Objects are not fsynced one by one: the journal syncs the file system once per batch
        # before it records the batch as done (see dataplane.journal), which keeps resume exact.
        return open_bucket(dst, conn_id=dst_conn_id, create=True, fsync=False)

    job = _Job(
        backend, Chain.of(msg), src_bucket, dst_url, open_dst, options, progress, control or JobControl()
    )
    with quiet_collector():
        return asyncio.run(job.run())
