"""A counting gate for the event loop whose uncontended take costs no coroutine switch.

``asyncio.Semaphore`` costs several calls per acquire and release; the fd transport takes its
slots per small object (or per batch of them), thousands of times a second, and mostly never waits.
"""

from __future__ import annotations

import asyncio
import collections

__all__ = ["Room"]


class Room:
    """At most ``size`` units taken at once; :meth:`take` waits, first come first served, for enough."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a room needs at least one unit")
        self.size = size
        self.free = size
        self._waiting: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    async def take(self, units: int) -> None:
        """Wait until ``units`` (1 to ``size``) are free and nobody waits before, then take them.

        Pair every successful call with :meth:`give` of the same ``units``.
        """
        if not 0 < units <= self.size:
            raise ValueError(f"cannot take {units} unit(s) of a room of {self.size}")
        if not self._waiting and self.free >= units:
            self.free -= units
            return
        entry = (units, asyncio.get_running_loop().create_future())
        self._waiting.append(entry)
        try:
            await entry[1]
        except BaseException:
            if entry[1].done() and not entry[1].cancelled():  # admitted, then cancelled: give it back
                self.give(units)
            else:
                self._waiting.remove(entry)
                self._admit()  # the head may have changed
            raise

    def give(self, units: int) -> None:
        """Give back what :meth:`take` took, and admit whoever waits and now fits."""
        self.free += units
        self._admit()

    def _admit(self) -> None:
        waiting = self._waiting
        while waiting:
            units, waiter = waiting[0]
            if waiter.done():  # cancelled meanwhile
                waiting.popleft()
                continue
            if self.free < units:
                return
            waiting.popleft()
            self.free -= units
            waiter.set_result(None)
