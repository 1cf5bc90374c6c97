"""Record every offline job in the job registry of its ETLs, whoever runs it (CLI, API, an Airflow task).

The service wraps the caller's progress callback in a :class:`JobRecorder`: the engine then reports
at least every :data:`RECORD_SECONDS`, each ETL's registry (:mod:`~airflow_ais_etl.etl.jobs`) gets
the snapshot at that pace, and the caller's callback still gets one per its own interval (and the
last). The record names the lease holder: the Airflow task and run, or ``user@host (pid)``.
Recording never fails a job: a write error is logged once and later writes are still tried.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.leases import this_holder
from airflow_ais_etl.etl.errors import AbortError
from airflow_ais_etl.etl.jobs import RUNNING, job_record, jobs_newest_first, put_job

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from airflow_ais_etl.cluster.base import Backend

__all__ = ["RECORD_SECONDS", "JobRecorder", "recent_jobs", "recorded_job"]

log = logging.getLogger(__name__)

RECORD_SECONDS = 2.0
"""How often a running job rewrites its record (at most)."""


def recent_jobs(backend: Backend, name: str) -> list[dict[str, Any]]:
    """Return the running and recent jobs of ETL ``name``, newest first (dead holders' as interrupted)."""
    return jobs_newest_first(backend.read_jobs(name), time.time(), backend.holder_gone)


class JobRecorder:
    """The progress callback the engine gets: record the job, forward snapshots to ``progress``.

    :param progress_every: the caller's progress interval, seconds
    """

    def __init__(
        self,
        backend: Backend,
        names: Sequence[str],
        src: str,
        dst: str,
        progress: Callable[[dict[str, Any]], None] | None,
        progress_every: float,
    ) -> None:
        self.backend = backend
        self.names = list(names)
        self.label = ">>".join(self.names)
        self.progress = progress
        self.progress_every = progress_every
        self.engine_every = min(progress_every, RECORD_SECONDS)
        """The interval the engine reports at."""
        self.id = uuid.uuid4().hex
        self.holder = this_holder()  # now, in the caller's thread: it may act for an Airflow task
        self.started = time.time()
        self._last: dict[str, Any] = {"src": src, "dst": dst, "state": RUNNING}
        self._recorded_at = self._forwarded_at = time.monotonic()
        self._final = False
        self._warned = False

    def begin(self) -> None:
        """Record the job as running before its first snapshot (listing a large bucket takes a while)."""
        self._record(self._last)

    def __call__(self, snapshot: dict[str, Any]) -> None:
        now = time.monotonic()
        final = snapshot.get("state") not in (None, RUNNING)
        self._last = snapshot
        if final or now - self._recorded_at >= RECORD_SECONDS - self.engine_every / 2:
            self._recorded_at = now
            self._record(snapshot)
        if self.progress is not None and (
            final or now - self._forwarded_at >= self.progress_every - self.engine_every / 2
        ):
            self._forwarded_at = now
            self.progress(snapshot)

    def end(self, error: BaseException | None) -> None:
        """Record how the job ended when the engine did not (it failed before its last snapshot)."""
        if self._final or error is None:
            return
        snapshot = dict(getattr(error, "stats", None) or self._last)
        if snapshot.get("state") in (None, RUNNING):
            snapshot["state"] = "aborted" if isinstance(error, AbortError) else "failed"
            snapshot["cause"] = getattr(error, "cause", None) or f"{type(error).__name__}: {error}"
        self._record(snapshot)

    def _record(self, snapshot: dict[str, Any]) -> None:
        self._final = snapshot.get("state") not in (None, RUNNING)
        record = job_record(
            self.id,
            self.label,
            self.holder,
            snapshot,
            started=self.started,
            now=time.time(),
            every=self.engine_every,
        )
        for name in self.names:
            try:
                self.backend.update_jobs(name, lambda doc: put_job(doc, record))
            except Exception as exc:  # the job matters more than its record
                if not self._warned:
                    self._warned = True
                    log.warning("etl %s: cannot record job %s in the job registry: %s", name, self.id, exc)


@contextlib.contextmanager
def recorded_job(
    backend: Backend,
    names: Sequence[str],
    src: str,
    dst: str,
    progress: Callable[[dict[str, Any]], None] | None,
    progress_every: float,
) -> Iterator[JobRecorder]:
    """Record the job run in the block (its error, if it raises one before its last snapshot)."""
    job = JobRecorder(backend, names, src, dst, progress, progress_every)
    job.begin()
    try:
        yield job
    except BaseException as exc:
        job.end(exc)
        raise
