"""Spread connections over worker processes that share one listening socket.

Every worker wakes up when a connection is pending; without help the fastest one takes them all
(a burst of 32 keep-alive connections can land on a single process). Each worker publishes its
number of open connections in shared memory and lets a less loaded worker take the next one.
"""

from __future__ import annotations

import mmap

_SLOT_BYTES = 8


class LoadBoard:
    """Open-connection counts per worker slot, in memory shared across ``fork``."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("slots must be >= 1")
        self._mm = mmap.mmap(-1, _SLOT_BYTES * slots)
        self._counts = memoryview(self._mm).cast("q")
        self.slots = slots

    def set(self, slot: int, count: int) -> None:
        """Publish the count of ``slot`` (only its owner writes it)."""
        self._counts[slot] = count

    def get(self, slot: int) -> int:
        """Return the published count of ``slot``."""
        return int(self._counts[slot])

    def should_defer(self, slot: int) -> bool:
        """Tell whether another worker has fewer connections and should accept the next one."""
        mine = self._counts[slot]
        return any(self._counts[i] < mine for i in range(self.slots) if i != slot)
