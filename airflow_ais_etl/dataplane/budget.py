"""Bytes in flight per target: the bound that keeps pods (and the engine) in bounded memory.

A count of requests bounds nothing when objects are large: 16 requests of 64 MiB each make the
pods hold a gigabyte. So the engine admits an object to a target only while the source bytes in
flight there stay within the target's budget; an object larger than the budget runs alone on its
target (it still goes through, just never beside another). Admission is first come, first served
across all targets, so a large object waiting for an idle target is not starved by small ones.

Small objects never wait: thousands of 4 KiB objects fit in the default budget, and an admission
that fits costs a few comparisons (no future, no task switch).
"""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING, Generic, TypeVar

from airflow_ais_etl.etl.errors import ValidationError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["DEFAULT_TARGET_BUDGET", "ByteBudget", "check_budget"]

DEFAULT_TARGET_BUDGET = 128 << 20
"""Source bytes in flight per target by default: two 64 MiB objects, or thousands of small ones."""

T = TypeVar("T")


def check_budget(value: object) -> int:
    """Return ``value`` as a budget in bytes; refuse what is not a positive integer, saying how to fix it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            f"bytes_in_flight must be a positive integer number of bytes per target "
            f"(e.g. {DEFAULT_TARGET_BUDGET} for 128 MiB), got {value!r}"
        )
    return value


class _Load:
    """What one target has in flight."""

    __slots__ = ("bytes", "objects", "peak")

    def __init__(self) -> None:
        self.bytes = 0
        self.objects = 0
        self.peak = 0
        """The most bytes ever in flight at once (a counter the tests check)."""


class ByteBudget(Generic[T]):
    """Admit objects to targets so that each target's bytes in flight stay within ``limit``.

    :param targets: the targets (any hashable handles, e.g. pod endpoints), in preference order
    :param limit: bytes per target; an object larger than this runs alone on its target
    :param key: how to tell targets apart in :meth:`peak` (default: the target itself)
    """

    def __init__(self, targets: Sequence[T], limit: int, key: Callable[[T], object] | None = None) -> None:
        if not targets:
            raise ValueError("a byte budget needs at least one target")
        self.limit = check_budget(limit)
        self._targets = list(targets)
        self._index = {id(t): i for i, t in enumerate(self._targets)}
        """Targets by identity: a release costs no comparison of endpoints."""
        self._loads = [_Load() for _ in self._targets]
        self._key = key or (lambda t: t)
        self._waiting: collections.deque[tuple[int, asyncio.Future[int]]] = collections.deque()

    def _fits(self, load: _Load, size: int) -> bool:
        return load.objects == 0 or load.bytes + size <= self.limit

    def _pick(self, size: int) -> int:
        """Return the index of the least-loaded target that can take ``size`` now, or -1."""
        best = -1
        best_load: _Load | None = None
        for i, load in enumerate(self._loads):
            if self._fits(load, size) and (
                best_load is None or (load.bytes, load.objects) < (best_load.bytes, best_load.objects)
            ):
                best, best_load = i, load
        return best

    def _take(self, index: int, size: int) -> T:
        load = self._loads[index]
        load.bytes += size
        load.objects += 1
        load.peak = max(load.peak, load.bytes)
        return self._targets[index]

    def try_acquire_leading(self, sizes: Sequence[int]) -> tuple[T, int] | None:
        """Take room now on the least-loaded target for the first of ``sizes`` and as many after it as fit.

        Return that target and how many objects it took (release them with :meth:`release_many`),
        or ``None`` when no target has room for the first one now (or somebody waits). A group of
        small objects goes to one target in one admission: one message to one pod, one decision.
        """
        if self._waiting or not sizes:
            return None
        index = self._pick(max(sizes[0], 0))
        if index < 0:
            return None
        return self._targets[index], self._take_leading(index, sizes)

    async def acquire_leading(self, sizes: Sequence[int]) -> tuple[T, int]:
        """:meth:`try_acquire_leading`, waiting (as :meth:`acquire` does) until the first object fits somewhere."""
        taken = self.try_acquire_leading(sizes)
        if taken is not None:
            return taken
        target = await self.acquire(sizes[0])
        index = self._index[id(target)]
        self._release_index(index, max(sizes[0], 0), admit=False)  # counted again below, with the rest
        return target, self._take_leading(index, sizes)

    def _take_leading(self, index: int, sizes: Sequence[int]) -> int:
        """Add the first of ``sizes`` (always) and those after it that fit to target ``index``; return how many."""
        load, limit = self._loads[index], self.limit
        taken, total = 0, 0
        for size in sizes:
            size = max(size, 0)
            if taken and load.bytes + total + size > limit:
                break
            taken += 1
            total += size
        load.bytes += total
        load.objects += taken
        load.peak = max(load.peak, load.bytes)
        return taken

    def try_acquire(self, size: int) -> T | None:
        """Take room for ``size`` bytes now if a target has it and nobody waits; ``None``: no room now.

        Pair a target it returns with :meth:`release`, as for :meth:`acquire`.
        """
        if self._waiting:
            return None
        size = max(size, 0)
        index = self._pick(size)
        return self._take(index, size) if index >= 0 else None

    async def acquire(self, size: int) -> T:
        """Wait until some target can take an object of ``size`` bytes; return that target.

        Pair every successful call with :meth:`release` of the same target and size.
        """
        size = max(size, 0)
        if not self._waiting:
            index = self._pick(size)
            if index >= 0:
                return self._take(index, size)
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        entry = (size, waiter)
        self._waiting.append(entry)
        try:
            index = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():  # admitted, then cancelled: give it back
                self._release_index(waiter.result(), size)
            else:
                self._waiting.remove(entry)
                self._admit()  # the head may have changed
            raise
        return self._targets[index]

    def release(self, target: T, size: int) -> None:
        """Give back what :meth:`acquire` admitted to ``target``, and admit whoever waits and now fits."""
        self._release_index(self._index[id(target)], max(size, 0))

    def release_many(self, target: T, total: int, count: int) -> None:
        """Give back ``count`` objects of ``total`` bytes (never below 0 each) admitted to ``target``."""
        self._release_index(self._index[id(target)], total, count)

    def _release_index(self, index: int, size: int, count: int = 1, *, admit: bool = True) -> None:
        load = self._loads[index]
        load.bytes -= size
        load.objects -= count
        if admit:
            self._admit()

    def _admit(self) -> None:
        """Admit waiters in arrival order while the first one fits somewhere."""
        waiting = self._waiting
        while waiting:
            size, waiter = waiting[0]
            if waiter.done():  # cancelled meanwhile
                waiting.popleft()
                continue
            index = self._pick(size)
            if index < 0:
                return
            waiting.popleft()
            self._take(index, size)
            waiter.set_result(index)

    def in_flight(self, target: T) -> int:
        """Return the bytes in flight on ``target`` now."""
        return self._loads[self._index[id(target)]].bytes

    def peak(self) -> dict[object, int]:
        """Return the most bytes each target ever had in flight at once."""
        return {self._key(t): load.peak for t, load in zip(self._targets, self._loads, strict=True)}
