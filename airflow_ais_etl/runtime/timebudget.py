"""A time budget that does not count the time its thread waited for a CPU.

Why: a batch stops after its budget so that a slow transform's objects go one per request, in
parallel; the engine then sends that pod single objects for a while. On a busy machine a thread
can wait a scheduler slice or more for a CPU in the middle of a batch of fast objects: that wait
says nothing about the transform, yet it used to end batches of 4 KiB echo objects within their
2 ms and halve a job's throughput (bench/README, eighth session). The pods' event loops measure
a long inline answer the same way (``runtime.server``). Linux tells each thread how long it waited
on a run queue (``/proc/thread-self/schedstat``); elsewhere the budget is plain wall time.
"""

from __future__ import annotations

import contextlib
import os
import threading
from time import monotonic

__all__ = ["TimeBudget", "cpu_wait"]

_SCHEDSTAT = "/proc/thread-self/schedstat"


class _StatFile:
    """One thread's open ``schedstat``: read with one ``pread`` each time, closed with its thread."""

    def __init__(self) -> None:
        try:
            self.fd = os.open(_SCHEDSTAT, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.fd = -1

    def __del__(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)


_per_thread = threading.local()


def cpu_wait() -> float:
    """Seconds the calling thread has waited for a CPU since it started (0.0 where unknown)."""
    stat = getattr(_per_thread, "stat", None)
    if stat is None:
        stat = _per_thread.stat = _StatFile()
    if stat.fd < 0:
        return 0.0
    try:
        return int(os.pread(stat.fd, 128, 0).split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


class TimeBudget:
    """``seconds`` from now, not counting the calling thread's waits for a CPU meanwhile.

    Asked from the thread that made it; the first question after the wall-clock deadline reads
    the thread's wait (one system call) and moves the deadline by it.
    """

    def __init__(self, seconds: float) -> None:
        self.deadline = monotonic() + seconds
        self._waited = cpu_wait()

    def spent(self) -> bool:
        """Whether the budget is used up."""
        now = monotonic()
        if now <= self.deadline:
            return False
        waited = cpu_wait()
        self.deadline += waited - self._waited
        self._waited = waited
        return now > self.deadline
