"""Offline transforms as AIS jobs ("xactions"): an id, a background thread, and AIS's status shapes.

``bucket.transform(...)`` returns the id; the SDK's ``client.job(id).wait()`` first asks
``what=qryxstats`` for the job's kind, then polls ``what=status`` (``etl-bck``: until ``end_time``)
or the snapshots' ``is_idle`` (``etl-listrange``, an idle kind). An aborted job reports
``aborted: true`` and the abort's text in ``err``/``abort-err``, as AIS does.
"""

from __future__ import annotations

import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.dataplane.engine import JobControl

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ETL_BCK", "ETL_OBJECTS", "Job", "JobRegistry"]

ETL_BCK, ETL_OBJECTS = "etl-bck", "etl-listrange"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
NODE = "ais-etl"
"""The one "target" whose snapshots the server reports (the transform spans the backend's targets)."""
_ID_CHARS = string.ascii_letters + string.digits
_KEEP_FINISHED = 1000


def _rfc3339(ns: int) -> str:
    if not ns:
        return GO_ZERO_TIME
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _bck(url: str) -> dict[str, Any]:
    """AIS's bucket record of ``PROVIDER://NAME`` (a bare name is an ``ais`` bucket)."""
    provider, sep, name = url.rpartition("://")
    return {"name": name, "provider": provider if sep else "ais", "namespace": {"uuid": "", "name": ""}}


@dataclass
class Job:
    """One offline transform: what it runs on, its progress, and how it ended."""

    id: str
    kind: str
    etl: list[str]
    src: str
    dst: str
    control: JobControl = field(default_factory=JobControl)
    start_ns: int = field(default_factory=time.time_ns)
    end_ns: int = 0
    err: str = ""
    aborted: bool = False
    stats: dict[str, Any] = field(default_factory=dict)

    def status(self) -> dict[str, Any]:
        """AIS's ``JobStatus``: ``end_time`` in Unix nanoseconds, 0 while running."""
        return {"uuid": self.id, "err": self.err, "end_time": self.end_ns, "aborted": self.aborted}

    def snap(self) -> dict[str, Any]:
        """AIS's ``JobSnap`` (as ``what=qryxstats`` reports it per target)."""
        stats = self.stats
        return {
            "id": self.id,
            "kind": self.kind,
            "start-time": _rfc3339(self.start_ns),
            "end-time": _rfc3339(self.end_ns),
            "src-bck": _bck(self.src),
            "dst-bck": _bck(self.dst),
            "bck": _bck(self.src),
            "stats": {
                "loc-objs": int(stats.get("objects", 0)),
                "loc-bytes": int(stats.get("bytes_in", 0)),
                "out-objs": int(stats.get("objects", 0)),
                "out-bytes": int(stats.get("bytes_out", 0)),
                "in-objs": 0,
                "in-bytes": 0,
            },
            "aborted": self.aborted,
            "is_idle": bool(self.end_ns),
            "abort-err": self.err if self.aborted else "",
        }

    def obj_errors(self) -> list[dict[str, Any]]:
        """The objects that failed (``continue_on_error``), as ``ETLDetails.obj_errors`` (``ais://B/O`` names)."""
        return [
            {
                "obj_name": f"{self.src if '://' in self.src else 'ais://' + self.src}/{e.get('object', '')}",
                "msg": str(e.get("error", "")),
                "ecode": 0,
            }
            for e in self.stats.get("errors") or []
        ]


class JobRegistry:
    """The server's jobs: start one in a thread, find it by id or kind, abort, wind all down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._threads: dict[str, threading.Thread] = {}

    def start(
        self,
        kind: str,
        etl: list[str],
        src: str,
        dst: str,
        run: Callable[[Job], dict[str, Any]],
    ) -> Job:
        """Run ``run(job)`` in a thread; its result is the job's final stats, an exception its abort."""
        job = Job(id=self._new_id(), kind=kind, etl=etl, src=src, dst=dst)

        def body() -> None:
            try:
                job.stats = dict(run(job))
            except BaseException as exc:  # the job's failure is its status, never the server's
                job.err = str(exc) or type(exc).__name__
                job.aborted = True
            finally:
                job.end_ns = time.time_ns()

        thread = threading.Thread(target=body, name=f"job-{job.id}", daemon=True)
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
            self._threads[job.id] = thread
        thread.start()
        return job

    def _new_id(self) -> str:
        return "".join(secrets.choice(_ID_CHARS) for _ in range(10))

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.end_ns]
        for job in sorted(finished, key=lambda j: j.end_ns)[: max(0, len(finished) - _KEEP_FINISHED)]:
            self._jobs.pop(job.id, None)
            self._threads.pop(job.id, None)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def find(self, job_id: str = "", kind: str = "", *, running_only: bool = False) -> list[Job]:
        """Return the jobs matching an id and/or kind (both empty: all), oldest first."""
        with self._lock:
            jobs = list(self._jobs.values())
        return [
            j
            for j in jobs
            if (not job_id or j.id == job_id)
            and (not kind or j.kind == kind)
            and not (running_only and j.end_ns)
        ]

    def abort(self, job_id: str = "", kind: str = "", cause: str = "aborted by the client") -> int:
        """Abort the running jobs matching an id and/or kind; return how many."""
        jobs = self.find(job_id, kind, running_only=True)
        for job in jobs:
            job.control.abort(cause)
        return len(jobs)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Abort every running job and wait for them to wind down (no orphan writes after exit)."""
        self.abort(cause="ais-etl serve is shutting down")
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
