"""Publish a running offline job's progress to its task's XCom, where the ETL view reads it.

XCom is the one channel from a task (on any worker, any backend) to the api-server. The engine
reports a snapshot every ``PUBLISH_SECONDS``; each one replaces the task's ``ais_etl_job`` XCom,
while the task log still gets a progress line only every ``progress_interval`` seconds.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Context

__all__ = ["JOB_KEY", "PUBLISH_SECONDS", "JobFeed", "publishable"]

log = logging.getLogger(__name__)

JOB_KEY = "ais_etl_job"
"""XCom key of a transform task's job snapshot (the engine's stats plus ``etl`` and ``conn_id``)."""

PUBLISH_SECONDS = 1.0
MAX_ERRORS = 50
"""Failing objects kept in a published snapshot (the newest; ``error_count`` keeps the total)."""


def publishable(stats: dict[str, Any], etl_name: str, conn_id: str) -> dict[str, Any]:
    """Return the snapshot to publish: bounded in size, naming the ETL and connection, time-stamped."""
    errors = list(stats.get("errors") or [])
    return {
        **stats,
        "errors": errors[-MAX_ERRORS:],
        "etl": etl_name,
        "conn_id": conn_id,
        "updated": time.time(),
    }


class JobFeed:
    """A progress callback: publish every snapshot, log one every ``log_every`` seconds (and the last).

    Publishing never fails the job: an XCom error is logged once and publishing stops.
    """

    def __init__(
        self,
        context: Context | dict[str, Any],
        etl_name: str,
        conn_id: str,
        *,
        log_every: float,
        log_line: Callable[[dict[str, Any]], None],
    ) -> None:
        self.ti = context.get("ti")
        self.etl_name = etl_name
        self.conn_id = conn_id
        self.log_every = log_every
        self.log_line = log_line
        self._last_log = time.monotonic()
        self._broken = self.ti is None

    def __call__(self, stats: dict[str, Any]) -> None:
        now = time.monotonic()
        final = stats.get("state") not in (None, "running")
        if final or now - self._last_log >= self.log_every:
            self._last_log = now
            self.log_line(stats)
        self.publish(stats)

    def publish(self, stats: dict[str, Any]) -> None:
        if self._broken:
            return
        try:
            self.ti.xcom_push(key=JOB_KEY, value=publishable(stats, self.etl_name, self.conn_id))  # type: ignore[union-attr]
        except Exception:
            self._broken = True
            log.warning(
                "cannot publish the job's progress to XCom; the ETL view will not show it", exc_info=True
            )
