"""Server side of batched small-object requests (``runtime.http1.batchwire``): one answer per object, in order.

A batch is a transport detail: every object gets exactly the verdict a request of its own would
have got (its result, or its own error status and message), so one failing object never fails its
neighbours. A batch is for fast transforms of small results: once it has taken
:data:`BATCH_BUDGET_SECONDS` or produced :data:`BATCH_OUTPUT_BYTES`, the objects left are answered
:data:`NOT_RUN`, so the engine sends them one per request, where a slow
transform runs in parallel (threads, worker processes) and never holds up an event loop for long.
"""

from __future__ import annotations

from collections.abc import Callable

from airflow_ais_etl.runtime.http1.batchwire import NOT_RUN, BatchFormatError, decode_items
from airflow_ais_etl.runtime.timebudget import TimeBudget

__all__ = [
    "BATCH_BUDGET_SECONDS",
    "BATCH_OUTPUT_BYTES",
    "MAX_BATCH_OBJECTS",
    "PULL_BATCH_BUDGET_SECONDS",
    "run_batch",
]

BATCH_OUTPUT_BYTES = 4 << 20
"""Result bytes after which a batch's remaining objects are left for requests of their own, so a
transform that inflates small objects never makes one answer (held whole by pod and engine) huge."""
BATCH_BUDGET_SECONDS = 0.002
"""Transform time after which a batch's remaining objects are left for requests of their own (below
the server's ``SLOW_INLINE_SECONDS``, so a batch of fast objects never counts as slow); the batch's
waits for a CPU do not count (``runtime.timebudget``)."""

PULL_BATCH_BUDGET_SECONDS = 0.5
"""The budget of a pull batch: it runs in a connection thread (never the event loop), and each of its
objects waits for two exchanges with the target (fetch, direct put), so it gets far more time."""

MAX_BATCH_OBJECTS = 4096
"""The most objects one batch may announce (a bound on the answer's bookkeeping, far above use)."""

TransformItem = Callable[[str, str, bytes], tuple[int, bytes | bytearray | memoryview]]


def run_batch(
    transform_item: TransformItem,
    count_header: str,
    query: str,
    body: bytes,
    budget: float = BATCH_BUDGET_SECONDS,
    output_bytes: int = BATCH_OUTPUT_BYTES,
) -> list[tuple[int, bytes | bytearray | memoryview]]:
    """Transform every object of a batch body; raise :class:`BatchFormatError` when it is malformed.

    :param transform_item: ``(path, query, data) -> (status, payload)`` for one object; never raises
    :param count_header: the request's object count (header ``X-AIS-ETL-Batch``)
    :param budget: seconds of transform time, and ``output_bytes`` bytes of results, after which
        the objects left are answered ``NOT_RUN`` (the first object always runs)
    """
    items = decode_items(body, batch_count(count_header))
    clock = TimeBudget(budget)
    out: list[tuple[int, bytes | bytearray | memoryview]] = []
    produced = 0
    for path, data in items:
        if out and (produced > output_bytes or clock.spent()):
            out.append((NOT_RUN, b""))
            continue
        status, payload = transform_item(path, query, bytes(data))
        produced += len(payload)
        out.append((status, payload))
    return out


def batch_count(value: str) -> int:
    """Return the object count of header ``X-AIS-ETL-Batch``; raise :class:`BatchFormatError` if out of range."""
    value = value.strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_BATCH_OBJECTS:
        raise BatchFormatError(f"object count must be 1..{MAX_BATCH_OBJECTS}, got {value!r}")
    return int(value)
