"""Threads kept between the requests a worker hands off, instead of one new thread a request.

Why: ``Thread.start`` waits until the new thread runs, and the worker's event loop (every other
connection of it) waits with it; on a busy machine that is a scheduler turn for each pull batch,
plus the thread's creation. A thread that finished its request waits here for the next one, up to
:data:`IDLE_THREAD_SECONDS`, then ends: an idle pod keeps no threads, a busy one keeps as many as
it has requests in threads at once.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["IDLE_THREAD_SECONDS", "ReusedThreads"]

IDLE_THREAD_SECONDS = 30.0

_Job = tuple["Callable[..., object]", tuple[Any, ...]]


class _Mailbox:
    """Where a kept thread waits for its next call (one per thread: ``queue.SimpleQueue.get`` with a
    timeout, shared by several threads, was seen to wait forever on Python 3.11)."""

    __slots__ = ("job", "ready")

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.job: _Job | None = None


class ReusedThreads:
    """Run each call on an idle kept thread if there is one, else on a new (daemon) thread."""

    def __init__(self, name: str, idle_seconds: float = IDLE_THREAD_SECONDS) -> None:
        self._name = name
        self._idle_seconds = idle_seconds
        self._waiting: list[_Mailbox] = []
        """The mailboxes of kept threads with no call yet (guarded by ``_lock``)."""
        self._lock = threading.Lock()

    @property
    def idle(self) -> int:
        """How many kept threads wait for a call now."""
        return len(self._waiting)

    def run(self, fn: Callable[..., object], *args: Any) -> None:
        """Call ``fn(*args)`` in a thread; it must handle its own errors (one that escapes ends its thread)."""
        with self._lock:
            if self._waiting:
                box = self._waiting.pop()  # the latest to finish: its stack is warm
                box.job = (fn, args)
                box.ready.set()
                return
        threading.Thread(target=self._serve, args=(fn, args), name=self._name, daemon=True).start()

    def _serve(self, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        box = _Mailbox()
        while True:
            fn(*args)
            fn = args = None  # type: ignore[assignment]  # hold nothing of a finished call while idle
            box.ready.clear()
            with self._lock:
                self._waiting.append(box)
            if not box.ready.wait(self._idle_seconds):
                with self._lock:
                    if box in self._waiting:  # no call came: end
                        self._waiting.remove(box)
                        return
                # a call was given to this thread just as it timed out: it is set already
            fn, args = box.job  # type: ignore[misc]
            box.job = None
