"""How an offline job ends: its final state, the error that reports an abort, and its workers' fate.

Pure helpers of :mod:`dataplane.engine`, kept apart so the engine reads as its steps.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.dataplane.jobstats import JobState
from airflow_ais_etl.etl.errors import AbortError

if TYPE_CHECKING:
    from airflow_ais_etl.dataplane.jobstats import JobStats

__all__ = ["abort_error", "attach", "cancel_unfinished", "raise_worker_bug", "settle_state"]


def settle_state(stats: JobStats, failure: BaseException | None, abort_cause: str | None) -> None:
    """Set the job's final state: failed (an object's error), aborted, or done."""
    if failure is not None:
        stats.state = JobState.FAILED
        stats.cause = str(failure)
    elif abort_cause is not None:
        stats.state = JobState.ABORTED
        stats.cause = abort_cause
    elif stats.state is JobState.RUNNING:
        stats.state = JobState.DONE


def abort_error(cause: str, snap: dict[str, Any], etl_label: str) -> AbortError:
    """Say why the job was aborted, how far it got, and how to resume (the stats attached)."""
    err = AbortError(
        f"etl job aborted: {cause}; {snap['objects']} of {snap['planned_objects']} "
        f"object(s) done, {snap['skipped']} skipped; no partial objects were left — "
        "run again with skip_existing to resume",
        etl_name=etl_label,
        cause=cause,
    )
    attach(err, snap)
    return err


def attach(exc: BaseException, stats: dict[str, Any]) -> None:
    """Give the error that ends a job the job's stats (``exc.stats``), where it takes attributes."""
    with contextlib.suppress(AttributeError):
        exc.stats = stats  # type: ignore[attr-defined]


async def cancel_unfinished(workers: list[asyncio.Task[None]], all_done: asyncio.Future[Any]) -> None:
    """Cancel the workers still running (an abort) and wait until they have stopped."""
    if not all_done.done():
        for w in workers:
            w.cancel()
        with contextlib.suppress(BaseException):
            await all_done


def raise_worker_bug(all_done: asyncio.Future[Any]) -> None:
    """Re-raise what broke a worker: a bug, not an object error, which must never be swallowed."""
    if all_done.done() and not all_done.cancelled():
        error = all_done.exception()
        if error is not None and not isinstance(error, asyncio.CancelledError):
            raise error
