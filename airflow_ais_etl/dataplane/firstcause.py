"""Which came first: an object's failure, or the cluster event behind it? Report that one.

A removed target, a stopped ETL or a killed pod makes in-flight objects fail (connection refused or
cut) a moment before the membership watch looks again. The job then knows two things: the object
failure and, soon after, the event. Backends that stamp events where they happen (the local one)
answer directly; for the others, a failure that looks like a vanished pod waits briefly for the
watch to name its cause.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from airflow_ais_etl.dataplane.httpclient import HTTPClientError
from airflow_ais_etl.etl.errors import TransformError

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.base import MembershipWatch

__all__ = ["EVENT_SLACK", "WATCH_WINDOW", "WatchCauses", "cause_before"]

EVENT_SLACK = 0.5
"""Seconds a recorded event may trail the failure it caused (a shim records a pod's exit just after)."""
WATCH_WINDOW = 5.0
"""Seconds to wait for an unstamped watch to name the cause of a pod that vanished.

Only a failing job waits, and only until the watch speaks: a Kubernetes watch event for a killed
container took over 1 s on a loaded 2-core machine (the job then named "cannot reach pod")."""


class WatchCauses:
    """The first cause a membership watch reported (its callback may run in another thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.first: str | None = None

    def seen(self, cause: str) -> None:
        with self._lock:
            if self.first is None:
                self.first = cause


def pod_vanished(failure: BaseException) -> bool:
    """Tell whether an object failed because its pod stopped answering (not a timeout, not a status)."""
    cause = failure.__cause__
    return (
        isinstance(failure, TransformError)
        and isinstance(cause, HTTPClientError | OSError)
        and not isinstance(cause, TimeoutError)
    )


def cause_before(
    failure: BaseException, failed_at: float, watch: MembershipWatch, seen: WatchCauses
) -> str | None:
    """Return the cluster event to report instead of ``failure`` (it came first), or None."""
    event = watch.earliest_event()
    if event is not None:
        return event[1] if event[0] <= failed_at + EVENT_SLACK else None
    if not pod_vanished(failure):
        return None
    deadline = time.monotonic() + WATCH_WINDOW
    while seen.first is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen.first
