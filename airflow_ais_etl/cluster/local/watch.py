"""The local backend's membership watch: a thread that polls for the first event of a running ETL.

The event source is a function (the backend's ``membership_event`` bound to the ETL and the
membership it started with), so the watch knows nothing of how the home records events.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from airflow_ais_etl.cluster.base import MembershipWatch
from airflow_ais_etl.cluster.local.events import Event, earliest

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["WATCH_INTERVAL", "PollingWatch"]

WATCH_INTERVAL = 0.25
"""Seconds between two looks: a killed pod or a removed target is noticed within this (plus a look)."""


class PollingWatch(MembershipWatch):
    """Call ``on_change(cause)`` once, from a daemon thread, when ``check`` first returns an event."""

    def __init__(
        self, name: str, check: Callable[[], Event | None], on_change: Callable[[str], None]
    ) -> None:
        self._check = check
        self._on_change = on_change
        self._stop = threading.Event()
        self.event: Event | None = None
        self._thread = threading.Thread(target=self._run, name=f"etl-aborter-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL):
            try:
                event = self._check()
            except Exception as exc:  # a watch must never die silently
                event = Event(time.time(), f"membership check failed: {exc}")
            if event:
                self.event = event
                self._on_change(event.cause)
                return

    def earliest_event(self) -> tuple[float, str] | None:
        """Look again now and return the first event since the watch began (epoch time, cause)."""
        event = earliest(e for e in (self._check(), self.event) if e is not None)
        return (event.at, event.cause) if event else None

    def close(self) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
