"""What earlier runs finished, held compactly enough for a million objects.

A resume asks one question per source object: did an earlier run of this ETL write exactly this
destination from exactly this source version? A dict of ``{source: (version, destination)}`` costs
about 300 bytes an object (300 MB for a million); this index keeps one 128-bit key of the triple as
a Python int per object (about 80-100 bytes), so the engine stays within its memory goal.

The key is two 64-bit SipHash values of the triple (Python's ``hash``, randomly seeded per process:
the index is built and queried in one process, and nobody can craft names that collide). A key
match without the triple is a 2**-128 event; computing it costs a fraction of a cryptographic
digest, which matters at a million lookups.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_ais_etl.dataplane.storage.base import Bucket

__all__ = ["ResumeIndex"]


_MASK = (1 << 64) - 1


def _key(src: str, version: str, dst: str) -> int:
    return ((hash((src, version, dst)) & _MASK) << 64) | (hash((dst, src, version, 0x5EED)) & _MASK)


class ResumeIndex:
    """The set of ``(source, version, destination)`` triples earlier runs noted as written."""

    def __init__(self, notes: Iterable[tuple[str, str, str]] = ()) -> None:
        self._keys: set[int] = {_key(*note) for note in notes}

    @classmethod
    def load(
        cls, bucket: Bucket, prefix: str, wanted: Callable[[str], bool] = lambda name: True
    ) -> ResumeIndex:
        """Read every journal object under ``prefix``, one at a time, keeping notes of ``wanted`` sources."""
        index = cls()
        for name in bucket.list_reserved(prefix):
            for src, version, dst in json.loads(bucket.read_bytes(name)):
                if wanted(src):
                    index._keys.add(_key(src, version, dst))
        return index

    def __len__(self) -> int:
        return len(self._keys)

    def __bool__(self) -> bool:
        return bool(self._keys)

    def has(self, src: str, version: str, dst: str) -> bool:
        """Tell whether an earlier run wrote ``dst`` from version ``version`` of ``src``."""
        return bool(self._keys) and _key(src, version, dst) in self._keys
