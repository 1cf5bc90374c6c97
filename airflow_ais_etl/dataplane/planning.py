"""Planning as a stream: the objects of a job are listed lazily, never held as one list.

A bucket of a million objects must not cost the engine a million ``ObjInfo`` at once. The listing
runs in a thread (a bucket's listing blocks: directory scans, object-store pages) and hands the
event loop batches through a short bounded queue, so listing, transforming and the planned counters
advance together; the job knows its planned total when the listing ends.

Hash sharding splits one job over N independent jobs (Airflow mapped tasks) of about equal size:
shard ``i`` of ``n`` takes the objects whose stable name hash is ``i`` modulo ``n``.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import threading
import zlib
from typing import TYPE_CHECKING, NamedTuple

from airflow_ais_etl.dataplane.jobstats import JobStats
from airflow_ais_etl.dataplane.storage.base import ObjInfo
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.naming import expand_template, validate_prefix

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from airflow_ais_etl.dataplane.storage.base import Bucket

__all__ = ["Feed", "check_shard", "in_shard", "select"]

BATCH = 1024
"""Objects per hand-over from the listing thread to the event loop."""
DEPTH = 4
"""Batches the listing may run ahead of the dispatch (bounds the memory of the plan)."""


def check_shard(shard: object) -> tuple[int, int] | None:
    """Return ``shard`` as ``(index, count)``, or raise a :class:`ValidationError` saying how to fix it."""
    if shard is None:
        return None
    if not isinstance(shard, (tuple, list)) or len(shard) != 2:
        raise ValidationError(f"shard must be a pair (index, count), e.g. (0, 4), got {shard!r}")
    index, count = shard
    for name, value in (("index", index), ("count", count)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"shard {name} must be an integer, got {value!r}")
    if count < 1:
        raise ValidationError(f"shard count must be at least 1, got {count}")
    if not 0 <= index < count:
        raise ValidationError(
            f"shard index must be between 0 and {count - 1} for {count} shard(s), got {index}"
        )
    return index, count


def in_shard(name: str, shard: tuple[int, int] | None) -> bool:
    """Tell whether object ``name`` belongs to ``shard`` (CRC-32 of the name: stable across runs and hosts)."""
    if shard is None:
        return True
    index, count = shard
    return zlib.crc32(name.encode()) % count == index


def select(
    src: Bucket,
    *,
    prefix: str = "",
    objects: Iterable[str] | None = None,
    template: str | None = None,
    shard: tuple[int, int] | None = None,
) -> Iterator[ObjInfo]:
    """Yield the source objects a job transforms, lazily (explicit list, template or prefix; one shard).

    An explicit object that does not exist yields a size of ``-1``: the job reports it as an error.
    """
    if objects:
        for name in objects:
            if in_shard(name, shard):
                info = src.stat(name)
                yield info if info is not None else ObjInfo(name, -1, "")
        return
    if template:
        names = expand_template(template)
        if names is not None:
            for name in names:
                if in_shard(name, shard) and (info := src.stat(name)) is not None:
                    yield info
            return
        prefix = validate_prefix(template)
    for info in src.list(validate_prefix(prefix) if prefix else ""):
        if in_shard(info.name, shard):
            yield info


class _Batch(NamedTuple):
    items: list[ObjInfo]
    last: bool
    skipped: int
    """Objects of this part of the listing that ``Feed.skip`` found done (not in ``items``)."""
    skipped_bytes: int


class Feed:
    """The planned objects, listed by a thread and taken one at a time by the engine's workers.

    The job's ``stats`` count the planned objects and bytes as batches arrive, and show ``listing``
    until the listing ends (``complete``). Create it on the event loop; call :meth:`close` when
    done (also early): the listing thread then stops.

    ``skip`` (set it any time) is asked in the listing thread whether an object is already done
    (a resume): such objects are counted as skipped and never reach the event loop, so a resume's
    per-object checks (a ``stat`` of the destination) run beside the listing, not in the loop.
    """

    def __init__(
        self,
        items: Iterator[ObjInfo],
        stats: JobStats | None = None,
        *,
        batch: int = BATCH,
        depth: int = DEPTH,
    ) -> None:
        self.complete = False
        self.skip: Callable[[ObjInfo], bool] | None = None
        self._stats = stats or JobStats("", "", "", dry_run=False)
        self._stats.listing = True
        self._items = items
        self._batch_size = batch
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Queue[_Batch | BaseException] = asyncio.Queue()
        self._room = threading.Semaphore(depth)
        """Batches the listing may still queue (taken by the thread, given back by the loop)."""
        self._stop = threading.Event()
        self._current: list[ObjInfo] = []
        self._pos = 0
        self._refill = asyncio.Lock()
        self._thread = threading.Thread(target=self._produce, name="ais-etl-listing", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        """List in batches, one batch ahead, so that the last batch comes marked as the last."""
        pending: list[ObjInfo] | None = None
        try:
            batches = iter(lambda: list(itertools.islice(self._items, self._batch_size)), [])
            pending = next(batches, [])
            while pending is not None:
                following = next(batches, None)
                if not self._put(self._batch(pending, following is None)):
                    return
                pending = following
        except BaseException as exc:  # handed to the event loop (after what was listed), raised by next()
            if not pending or self._put(_Batch(pending, False, 0, 0)):
                self._put(exc)

    def _batch(self, listed: list[ObjInfo], last: bool) -> _Batch:
        skip = self.skip
        if skip is None:
            return _Batch(listed, last, 0, 0)
        kept = [info for info in listed if not skip(info)]
        skipped_bytes = _bytes_of(listed) - _bytes_of(kept)
        return _Batch(kept, last, len(listed) - len(kept), skipped_bytes)

    def _put(self, item: _Batch | BaseException) -> bool:
        """Queue ``item``, waiting for room; return ``False`` once the feed is closed."""
        while not self._stop.is_set():
            if self._room.acquire(timeout=0.1):
                try:
                    self._loop.call_soon_threadsafe(self._ready.put_nowait, item)
                except RuntimeError:  # the event loop is gone: nobody reads any more
                    return False
                return True
        return False

    async def prime(self) -> None:
        """Wait for the first batch, so that a listing that fails at once (a bad template, a prefix
        outside the bucket) fails the job before it touches the destination."""
        if self._pos >= len(self._current) and not self.complete:
            info = await self.next()
            if info is not None:
                self._pos -= 1

    async def next(self) -> ObjInfo | None:
        """Return the next planned object, or ``None`` when the listing is exhausted."""
        while self._pos >= len(self._current):
            if self.complete:
                return None
            async with self._refill:
                if self._pos < len(self._current) or self.complete:
                    continue
                got = await self._ready.get()
                self._room.release()
                if isinstance(got, BaseException):
                    self.complete, self._stats.listing = True, False
                    raise got
                self._current, self._pos = got.items, 0
                self._stats.planned_objects += len(got.items) + got.skipped
                self._stats.planned_bytes += _bytes_of(got.items) + got.skipped_bytes
                self._stats.skipped += got.skipped
                if got.last:
                    self.complete, self._stats.listing = True, False
        info = self._current[self._pos]
        self._pos += 1
        return info

    def take_ready(self, most: int) -> list[ObjInfo]:
        """Return up to ``most`` more planned objects that are listed already, without waiting."""
        start = self._pos
        self._pos = min(len(self._current), start + most)
        return self._current[start : self._pos]

    def close(self) -> None:
        """Stop the listing thread (it may be waiting for room in the queue)."""
        self._stop.set()
        self._thread.join(timeout=5)


_SIZE = operator.attrgetter("size")


def _bytes_of(infos: list[ObjInfo]) -> int:
    """Return the bytes of ``infos`` (missing objects, size -1, count none): C loops, not a Python one per object."""
    total = sum(map(_SIZE, infos))
    if infos and min(map(_SIZE, infos)) < 0:
        total = sum(size for size in map(_SIZE, infos) if size > 0)
    return total
