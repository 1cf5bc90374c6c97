"""The resume journal of offline jobs, stored in the destination bucket itself.

Why there: an Airflow retry may run on another worker, so the record of what was done must travel
with the data. After each object is written (atomically), the job notes ``source name → (source
version, destination name)``; the notes are flushed as small immutable JSON objects under
``.ais-etl/journal/<etl>/<fingerprint>/`` (the listing of a bucket never shows that prefix). The
fingerprint identifies the ETL definition, so a changed transform redoes everything. A note lost to
a crash only means that object is transformed again (writes are atomic and idempotent).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import TYPE_CHECKING

from airflow_ais_etl.dataplane.resumeindex import ResumeIndex

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_ais_etl.dataplane.storage.base import Bucket

FLUSH_EVERY = 1000
FLUSH_SECONDS = 0.2
"""Notes wait at most this long before they are written (plus one flush), so a job killed with
``kill -9`` redoes only the objects of its last fraction of a second. A flush writes the notes (a
small object) after one ``syncfs`` of the destination, not one ``fsync`` per note: the kernel keeps
written data when the process dies, and the sync orders the objects before the notes that name
them for a machine crash, at one sync per batch instead of per object."""


class Journal:
    """Buffered, append-only notes of finished objects for one ETL definition in one bucket."""

    def __init__(self, bucket: Bucket, etl_name: str, fingerprint: str, *, auto_flush: bool = True) -> None:
        """:param auto_flush: flush from :meth:`record` when due; ``False``: the caller polls :meth:`due`."""
        self.bucket = bucket
        self.auto_flush = auto_flush
        self.prefix = f".ais-etl/journal/{etl_name}/{fingerprint}/"
        self._run = f"{int(time.time())}-{uuid.uuid4().hex[:8]}-{os.getpid()}"
        self._seq = 0
        self._pending: list[tuple[str, str, str]] = []
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()

    def load_index(self, wanted: Callable[[str], bool] = lambda name: True) -> ResumeIndex:
        """Return the compact index of earlier runs' notes of ``wanted`` sources (what a resume uses)."""
        return ResumeIndex.load(self.bucket, self.prefix, wanted)

    def load(self) -> dict[str, tuple[str, str]]:
        """Return ``{source: (version, destination)}`` of every note flushed by earlier runs."""
        done: dict[str, tuple[str, str]] = {}
        for name in sorted(self.bucket.list_reserved(self.prefix)):
            for src, version, dst in json.loads(self.bucket.read_bytes(name)):
                done[src] = (version, dst)
        return done

    def record(self, src: str, version: str, dst: str) -> bool:
        """Note a written object; return whether a flush is due (as :meth:`due`, without asking again)."""
        return self.record_many(((src, version, dst),))

    def record_many(self, notes: Iterable[tuple[str, str, str]]) -> bool:
        """Note written objects ``(source, version, destination)``; return whether a flush is due."""
        with self._lock:
            self._pending.extend(notes)
            due = len(self._pending) >= FLUSH_EVERY or time.monotonic() - self._last_flush > FLUSH_SECONDS
        if due and self.auto_flush:
            self.flush()
            return False
        return due

    def has_pending(self) -> bool:
        """Tell whether notes wait to be flushed."""
        with self._lock:
            return bool(self._pending)

    def due(self) -> bool:
        """Tell whether enough notes are pending (or enough time passed) to flush them."""
        with self._lock:
            return bool(self._pending) and (
                len(self._pending) >= FLUSH_EVERY or time.monotonic() - self._last_flush > FLUSH_SECONDS
            )

    def flush(self) -> None:
        """Write pending notes, after making the objects they name durable (one sync per batch).

        The batch is taken before the sync, so every note written names an object the sync covered.
        """
        with self._lock:
            batch, self._pending = self._pending, []
            self._last_flush = time.monotonic()
            if not batch:
                return
            self._seq += 1
            name = f"{self.prefix}{self._run}-{self._seq:06d}.json"
        self.bucket.sync()
        self.bucket.write_bytes(name, json.dumps(batch).encode())
