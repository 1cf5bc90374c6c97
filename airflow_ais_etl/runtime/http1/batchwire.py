"""The wire format of batched small-object requests between the engine and the project's own runtime.

Why: a 4 KiB object costs far more in per-request plumbing (a round trip, system calls on both
ends, parsing) than in its bytes. A pod of the project's runtime that says so in its ``/health``
answer (header :data:`BATCH_HEADER`) accepts one ``PUT`` carrying many objects and answers all of
them in one response, each object with its own status. AIS's servers and foreign images never
say so, and keep getting one request per object.

Request body: per object ``>II`` (path length, data length), the UTF-8 path (what a single
request's decoded path would be, ``/<bucket>/<object>``), then the data. Response body: per
object, in order, ``>HI`` (status, payload length) and the payload: the result for status 200,
:data:`NOT_RUN` for an object the pod left for a request of its own (the batch used up its time
budget: slow transforms run in parallel, one request each), an error message otherwise. The
``PUT`` carries :data:`BATCH_HEADER` with the object count.

A *pull* batch (hpull ETLs of bytes) is a ``GET`` with the same header and the same framing, but
each object's path is the escaped request path of its own hpull ``GET`` (``/<escaped uname>``)
and its data is the ``Ais-Node-Url`` value of its result (empty: answer the result). The pod
fetches each object from the target itself, transforms it and, given a node URL, puts the result
there: such an object is answered :data:`DELIVERED` with the delivered length in ASCII digits.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "BATCH_HEADER",
    "ALONE",
    "BATCH_VERSION",
    "DELIVERED",
    "NOT_RUN",
    "BatchFormatError",
    "decode_items",
    "decode_results",
    "encode_items",
    "encode_results",
]

BATCH_HEADER = "X-AIS-ETL-Batch"
"""In a ``/health`` answer: the batch format version the pod accepts; in a request: the object count."""
BATCH_VERSION = "1"
NOT_RUN = 0
"""The status of an object the pod did not transform: send it again on its own."""
DELIVERED = 204
"""The status of an object of a pull batch whose result the pod delivered by direct put."""
ALONE = "0"
"""The :data:`BATCH_HEADER` value of an object of a failed batch sent on its own: the pod runs it in a
thread, so if it is the object that hung its batch, it cannot block the pod's event loop."""

_ITEM = struct.Struct(">II")
_RESULT = struct.Struct(">HI")


class BatchFormatError(ValueError):
    """A batch body that does not match its framing (cut, overlong, or a wrong object count)."""


def encode_items(items: Sequence[tuple[str, bytes]]) -> bytes:
    """Frame ``(path, data)`` pairs as one request body."""
    parts: list[bytes] = []
    pack = _ITEM.pack
    for path, data in items:
        raw = path.encode()
        parts += (pack(len(raw), len(data)), raw, data)
    return b"".join(parts)


def decode_items(body: bytes, count: int) -> list[tuple[str, memoryview]]:
    """Split a request body into ``count`` ``(path, data)`` pairs; raise :class:`BatchFormatError`."""
    view = memoryview(body)
    out: list[tuple[str, memoryview]] = []
    pos, end, head = 0, len(body), _ITEM.size
    unpack = _ITEM.unpack_from
    while pos < end:
        if pos + head > end:
            raise BatchFormatError(f"batch body cut inside the header of object {len(out) + 1}")
        path_len, data_len = unpack(body, pos)
        start = pos + head + path_len
        pos = start + data_len
        if pos > end:
            raise BatchFormatError(f"batch body cut inside object {len(out) + 1}")
        try:
            path = bytes(view[start - path_len : start]).decode()
        except UnicodeDecodeError as err:
            raise BatchFormatError(
                f"object {len(out) + 1} of the batch has a path that is not UTF-8"
            ) from err
        out.append((path, view[start:pos]))
    if len(out) != count:
        raise BatchFormatError(f"batch announces {count} object(s) but carries {len(out)}")
    return out


def encode_results(
    results: Sequence[tuple[int, bytes | bytearray | memoryview]],
) -> list[bytes | bytearray | memoryview]:
    """Frame ``(status, payload)`` pairs as the parts of one response body."""
    parts: list[bytes | bytearray | memoryview] = []
    pack = _RESULT.pack
    for status, payload in results:
        parts += (pack(status, len(payload)), payload)
    return parts


def decode_results(body: bytes, count: int) -> list[tuple[int, bytes]]:
    """Split a response body into ``count`` ``(status, payload)`` pairs; raise :class:`BatchFormatError`."""
    out: list[tuple[int, bytes]] = []
    pos, end, head = 0, len(body), _RESULT.size
    unpack = _RESULT.unpack_from
    while pos < end:
        if pos + head > end:
            raise BatchFormatError(f"batch answer cut inside the header of object {len(out) + 1}")
        status, size = unpack(body, pos)
        start = pos + head
        pos = start + size
        if pos > end:
            raise BatchFormatError(f"batch answer cut inside object {len(out) + 1}")
        out.append((status, body[start:pos]))
    if len(out) != count:
        raise BatchFormatError(f"batch answer carries {len(out)} object(s), expected {count}")
    return out
