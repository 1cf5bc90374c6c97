"""Run only as many transforms at once as keep this process's share of the CPUs busy.

The engine keeps several requests in flight per pod (``num_workers``, 8 by default), which a
transform that waits (remote calls, I/O) needs. A transform that computes (compression, decoding)
gains nothing from more calls at once than cores: on a 2-core machine, two pods of 8 such calls
ran 16 compressions on 2 cores, about 4 % slower than 2 at a time.

So each worker process lets in as many transform calls (a request, or a message of the file
transport) as it takes to keep ``target`` cores busy, learnt from the calls themselves: a call
that *wants* a CPU a share ``w`` of its time (running, or runnable and waiting for a core) needs
``target / w`` calls at once. ``w`` comes from the thread's scheduler statistics
(``/proc/thread-self/schedstat``: CPU time and run-queue wait), where the kernel has them, else
from its CPU time alone. A call never waits longer than :data:`PATIENCE_SECONDS` at the gate, so a
wrong estimate (or a transform that calls its own pod) delays, and never deadlocks.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["PATIENCE_SECONDS", "CallGate", "process_target", "thread_want_ns"]

PATIENCE_SECONDS = 10.0
MAX_CALLS = 256
_WEIGHT = 0.25
"""How much the newest call moves the estimate of the share of time calls want a CPU."""


_files = threading.local()
"""Each thread's own ``/proc/thread-self/schedstat``, kept open (read again costs one ``pread``;
open, read and close cost ten times more). A thread's file closes when the thread ends."""


def _schedstat_ns() -> int | None:
    """The calling thread's CPU time plus run-queue wait in ns (``None``: not available here)."""
    fd: int | None = getattr(_files, "fd", -1)
    if fd == -1:
        try:
            f = open("/proc/thread-self/schedstat", "rb", buffering=0)  # kept open: read again by pread
        except OSError:
            f = None  # a kernel without scheduler statistics: not asked again
        _files.file = f
        fd = _files.fd = f.fileno() if f is not None else None
    if fd is None:
        return None
    try:
        fields = os.pread(fd, 128, 0).split()
        return int(fields[0]) + int(fields[1])
    except (OSError, ValueError, IndexError):
        return None


def thread_want_ns() -> int:
    """Nanoseconds the calling thread has spent on a CPU or waiting for one (its CPU time where the
    kernel keeps no scheduler statistics)."""
    value = _schedstat_ns()
    return value if value is not None else time.thread_time_ns()


class CallGate:
    """Admit calls while fewer than the learnt limit run; learn the limit from each call's CPU want.

    :param target: cores this process should keep busy (its share of the pod's CPUs)
    :param want: the calling thread's CPU-wanting time so far, in ns (:func:`thread_want_ns`)
    """

    def __init__(
        self,
        target: int,
        *,
        want: Callable[[], int] = thread_want_ns,
        clock: Callable[[], int] = time.monotonic_ns,
        patience: float = PATIENCE_SECONDS,
    ) -> None:
        self.target = max(1, target)
        self._want = want
        self._clock = clock
        self._patience = patience
        self._share = 1.0
        """Estimated share of a call's time that it wants a CPU (1: computes all the time)."""
        self._running = 0
        self._cond = threading.Condition()

    @property
    def limit(self) -> int:
        """How many calls may run at once now."""
        return min(MAX_CALLS, max(self.target, int(self.target / max(self._share, 1e-3) + 0.5)))

    @property
    def running(self) -> int:
        return self._running

    @contextlib.contextmanager
    def call(self, *, wait: bool = True) -> Iterator[None]:
        """Wait (at most the patience) for room, run the block, learn from how it used the CPU.

        ``wait=False``: go in at once (a caller that must not block), and still count as running.
        """
        with self._cond:
            if wait and self._running >= self.limit:
                self._cond.wait_for(lambda: self._running < self.limit, self._patience)
            self._running += 1
        want0, wall0 = self._want(), self._clock()
        try:
            yield
        finally:
            wall = self._clock() - wall0
            wanted = self._want() - want0
            with self._cond:
                self._running -= 1
                if wall > 0:
                    share = min(1.0, max(0.0, wanted / wall))
                    self._share += _WEIGHT * (share - self._share)
                self._cond.notify()


def process_target(cpus: int, workers: int) -> int:
    """Cores one of ``workers`` processes should keep busy when the pod may use ``cpus``."""
    return max(1, cpus // max(1, workers))
