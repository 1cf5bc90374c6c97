"""Single byte ranges (RFC 7233 ``bytes=A-B``, ``bytes=A-``, ``bytes=-N``) of a streamed object.

Directory objects get ranges from Starlette's file response; object-store objects are streamed
from :meth:`Bucket.read_chunks`, so the range is cut from that stream here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from airflow_ais_etl.serve.errors import AisHttpError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["RANGE_NOT_SATISFIABLE", "cut", "parse_range"]

RANGE_NOT_SATISFIABLE = 416
_SINGLE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str, size: int) -> tuple[int, int]:
    """Return ``(start, end)`` (end exclusive) of a single range over ``size`` bytes."""
    match = _SINGLE.fullmatch(header.strip().replace(" ", ""))
    if match is None or match.groups() == ("", ""):
        raise AisHttpError(
            400, f"range {header!r}: only one range, bytes=A-B, bytes=A- or bytes=-N, is supported"
        )
    first, last = match.groups()
    if not first:
        start, end = max(size - int(last), 0), size
    else:
        start, end = int(first), min(int(last) + 1, size) if last else size
    if start >= size or start >= end:
        raise AisHttpError(RANGE_NOT_SATISFIABLE, f"range {header!r} is outside the object's {size} bytes")
    return start, end


def cut(chunks: Iterable[bytes], start: int, end: int) -> Iterator[bytes]:
    """Yield the bytes ``[start, end)`` of a chunk stream, stopping the stream once past ``end``."""
    offset = 0
    for chunk in chunks:
        lo, hi = max(start - offset, 0), min(end - offset, len(chunk))
        offset += len(chunk)
        if lo < hi:
            yield chunk[lo:hi]
        if offset >= end:
            return
