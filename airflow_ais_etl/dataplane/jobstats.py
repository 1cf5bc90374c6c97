"""The counters of one offline job and the JSON-safe snapshot that progress reports and results show."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ["JobState", "JobStats", "Route", "TargetStats"]


class Route:
    """How an object's result reached the destination: bits of an int (0: through the engine)."""

    ENGINE = 0
    DIRECT = 1
    """The pod put it to the destination itself (direct put)."""
    FILE = 2
    """The pod wrote it into the destination directory itself (the file transport, ``dataplane.filetransfer``)."""


class JobState(str, Enum):
    """Where an offline job is: it runs, then ends ``done``, ``failed`` (an object) or ``aborted``."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    ABORTED = "aborted"

    __str__ = str.__str__


@dataclass
class TargetStats:
    """What one target's pod did, plus the requests it has in flight (for least-loaded dispatch)."""

    objects: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    errors: int = 0
    in_flight: int = 0

    def to_dict(self) -> dict[str, int]:
        return {
            "objects": self.objects,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "errors": self.errors,
        }


@dataclass
class JobStats:
    """Counters of one job, updated from the event loop only (no locks)."""

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
    bytes_via_engine: int = 0
    """Result bytes the engine carried from a pod to the destination (direct put carries none)."""
    direct_put_objects: int = 0
    """Objects the pods delivered to the destination themselves (a direct-put job)."""
    file_objects: int = 0
    """Objects the pods read and wrote in place (the file transport: no byte through the engine)."""
    errors: list[dict[str, str]] = field(default_factory=list)
    targets: dict[str, TargetStats] = field(default_factory=dict)
    state: JobState = JobState.RUNNING
    cause: str = ""
    listing: bool = False
    """The source is still being listed: the planned counters are not final yet."""

    def record_error(self, name: str, target: str, error: str, *, stage: str = "") -> None:
        """Record a failed object; ``stage``: the ETL of a pipeline that failed it."""
        entry = {"object": name, "target": target, "error": error}
        if stage:
            entry["stage"] = stage
        self.errors.append(entry)

    def record_done(
        self, target: TargetStats, size_in: int, size_out: int, *, route: int = Route.ENGINE, count: int = 1
    ) -> None:
        """Count ``count`` objects (``size_in`` / ``size_out`` bytes in all) written by ``target``'s pod;
        ``route``: how their results got there."""
        if route & Route.DIRECT:
            self.direct_put_objects += count
        if route & Route.FILE:
            self.file_objects += count
        if not route:
            self.bytes_via_engine += size_out
        target.objects += count
        target.bytes_in += size_in
        target.bytes_out += size_out
        self.objects += count
        self.bytes_in += size_in
        self.bytes_out += size_out

    def _eta(self, rate: float) -> float | None:
        """Seconds left at ``rate`` objects per second (0 when nothing is left, None when unknown)."""
        remaining = self.planned_objects - (self.objects + self.skipped + len(self.errors))
        if self.listing:
            return None
        if rate > 0 and self.state is JobState.RUNNING:
            return remaining / rate
        return 0.0 if remaining <= 0 else None

    def snapshot(self) -> dict[str, Any]:
        """Return the counters as a JSON-safe dict (the job's result and every progress report)."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.objects / elapsed
        eta = self._eta(rate)
        return {
            "etl": self.etl,
            "src": self.src,
            "dst": self.dst,
            "dry_run": self.dry_run,
            "state": self.state.value,
            "cause": self.cause,
            "planned_objects": self.planned_objects,
            "planned_bytes": self.planned_bytes,
            "listing": self.listing,
            "objects": self.objects,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "skipped": self.skipped,
            "bytes_via_engine": self.bytes_via_engine,
            "direct_put_objects": self.direct_put_objects,
            "file_objects": self.file_objects,
            "error_count": len(self.errors),
            "errors": list(self.errors),
            "targets": {tid: t.to_dict() for tid, t in sorted(self.targets.items())},
            "elapsed": round(elapsed, 3),
            "rate_objects": round(rate, 2),
            "rate_bytes": round(self.bytes_in / elapsed, 1),
            "eta": None if eta is None else round(eta, 1),
        }
