"""Keep Python's cycle collector out of a job's way: it would walk the whole process every few ms.

A job makes several short-lived container objects per source object (its info, the message entry,
the verdict) and frees them by reference counting; the collector still counts each allocation and,
every few hundred, walks the young ones, and now and then everything the process holds: an Airflow
worker's imports, hundreds of thousands of objects (a 35 ms walk measured in a 20,000-object job
here). While a job runs, what existed before it is frozen (``gc.freeze``: left out of every walk,
as a forking server does), and the young generation is collected every ``YOUNG_THRESHOLD``
allocations instead of 700, as in the pods (``runtime.collector``). Both are undone when the last
job of the process ends; cycles that arise meanwhile are still collected, only later.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from typing import TYPE_CHECKING

from airflow_ais_etl.runtime.collector import YOUNG_THRESHOLD, raise_young_threshold

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["YOUNG_THRESHOLD", "quiet_collector"]

_lock = threading.Lock()
_jobs = 0
_saved: tuple[tuple[int, int, int], bool] | None = None
"""The thresholds before the first job, and whether that job froze the process's objects."""


@contextlib.contextmanager
def quiet_collector() -> Iterator[None]:
    """Run a job with the collector quiet; jobs may overlap (threads): the last one out restores it."""
    global _jobs, _saved
    with _lock:
        if _jobs == 0:
            froze = gc.get_freeze_count() == 0  # someone else's freeze (Airflow's, before a fork) is kept
            if froze:
                gc.freeze()
            _saved = (raise_young_threshold(), froze)
        _jobs += 1
    try:
        yield
    finally:
        with _lock:
            _jobs -= 1
            if _jobs == 0 and _saved is not None:
                thresholds, froze = _saved
                _saved = None
                gc.set_threshold(*thresholds)
                if froze:
                    gc.unfreeze()
