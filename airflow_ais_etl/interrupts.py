"""Ctrl-C and ``kill``: the CLI stops at once, cleans up, and exits 130 (SIGINT) or 143 (SIGTERM).

Python turns SIGINT into ``KeyboardInterrupt`` but lets SIGTERM kill the process outright, so a
command stopped by a service manager or ``timeout`` would skip its cleanup (pods started by an
unfinished init, a job's journal). :func:`signals_raise` makes both signals raise in the main
thread; :func:`run_interruptible` runs a long job in a worker thread and, on the first signal, asks
it to abort and waits a bounded time for it to wind down (a second signal stops waiting).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType

__all__ = ["Interrupted", "exit_code", "run_interruptible", "signals_raise"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)
WIND_DOWN = 10.0
"""Seconds an interrupted job may take to stop its requests and flush its journal (usually < 1 s)."""


class Interrupted(BaseException):
    """The process got SIGINT or SIGTERM (a ``BaseException``, like ``KeyboardInterrupt``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


def exit_code(signum: int) -> int:
    """Return the shell's exit status for a process ended by ``signum`` (130, 143)."""
    return 128 + signum


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _handlers(handler: Callable[[int, FrameType | None], Any]) -> Iterator[None]:
    """Install ``handler`` for SIGINT and SIGTERM for the block (main thread only; else nothing)."""
    if not _main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Make SIGINT and SIGTERM raise :class:`Interrupted` in the main thread for the block."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    with _handlers(handler):
        yield


def run_interruptible(
    work: Callable[[], None], abort: Callable[[int], None], *, wind_down: float = WIND_DOWN
) -> int | None:
    """Run ``work`` in a thread until it returns; on the first signal call ``abort(signum)``.

    After a signal, wait at most ``wind_down`` seconds for ``work`` to end (a second signal: not
    at all). Return the first signal's number, or None when none came. ``work`` must not raise.
    """
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if len(received) == 1:
            abort(signum)

    worker = threading.Thread(target=work, name="ais-etl-job", daemon=True)
    with _handlers(handler):
        worker.start()
        deadline: float | None = None
        while worker.is_alive():
            worker.join(0.05)
            if received and deadline is None:
                deadline = time.monotonic() + wind_down
            if deadline is not None and (len(received) > 1 or time.monotonic() > deadline):
                break
    return received[0] if received else None
