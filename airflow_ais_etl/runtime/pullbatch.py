"""A pull batch in the pod: fetch its objects, transform each, deliver the results.

With a target that takes batches (``runtime.targetbatch``) the fetches are one request and the
direct puts another, whatever the count; anything the target did not take in a batch (too large,
a batch that failed as a whole, a result for another host or a pipeline) goes in a request of its
own. Every object ends with the verdict its own ``GET`` would have got.
"""

from __future__ import annotations

import http
from typing import TYPE_CHECKING, Protocol

from airflow_ais_etl.runtime.aisproto import DirectPutError
from airflow_ais_etl.runtime.http1.batchwire import DELIVERED, NOT_RUN
from airflow_ais_etl.runtime.timebudget import TimeBudget
from airflow_ais_etl.runtime.upstream import CallbackError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_ais_etl.runtime.targetbatch import TargetBatches

__all__ = ["PULL_OUTPUT_BYTES", "PUT_ITEM_LIMIT", "PullSteps", "Verdict", "run_pull_batch"]

Verdict = tuple[int, bytes | bytearray | memoryview]

PULL_OUTPUT_BYTES = 4 << 20
"""Result bytes a pull batch holds at most; the objects left are answered ``NOT_RUN``."""
PUT_ITEM_LIMIT = 1 << 20
"""Results up to this size go in the batched PUT; larger ones in a PUT of their own."""
_TEXT_LIMIT = 4096


class PullSteps(Protocol):
    """What the pod does for one object of a pull batch (``runtime.handlers.App``)."""

    def fetch_one(self, path: str, query: str) -> bytes:
        """GET the object from the target (raises ``CallbackError``)."""
        ...

    def transform_one(self, path: str, query: str, data: bytes) -> bytes | bytearray | memoryview:
        """Transform it (raises the handler's failure)."""
        ...

    def destination(self, path: str, query: str, node: bytes | memoryview) -> tuple[str, str] | None:
        """Return the direct-put URL and the rest of the pipeline, or ``None`` to answer the result."""
        ...

    def put_one(self, url: str, rest: str, result: bytes) -> int:
        """PUT the result on its own (raises ``DirectPutError``); return the delivered length."""
        ...

    def failed(self, path: str, exc: Exception) -> Verdict:
        """Log the failure of one object and return its verdict (status and message)."""
        ...

    def item_path(self, path: str, query: str) -> str:
        """The batch item path of the object's callback GET."""
        ...


def _text(payload: bytes) -> str:
    return payload[:_TEXT_LIMIT].decode("utf-8", "replace").strip()


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def run_pull_batch(
    items: Sequence[tuple[str, bytes | memoryview]],
    query: str,
    steps: PullSteps,
    batches: TargetBatches | None,
    budget: float,
) -> list[Verdict]:
    """Answer every ``(request path, Ais-Node-Url)`` of a pull batch, in order.

    :param budget: seconds after which the objects left are answered ``NOT_RUN`` (the first always runs)
    """
    fetched = batches.fetch([steps.item_path(path, query) for path, _ in items]) if batches else None
    out: list[Verdict | None] = [None] * len(items)
    puts: list[tuple[int, str, bytes, str]] = []  # index, item path, result, url
    clock = TimeBudget(budget)
    held = 0
    for i, (path, node) in enumerate(items):
        if i and (held > PULL_OUTPUT_BYTES or clock.spent()):
            out[i] = (NOT_RUN, b"")
            continue
        try:
            if fetched is None or fetched[i][0] == NOT_RUN:
                data = steps.fetch_one(path, query)
            elif fetched[i][0] == 200:
                data = fetched[i][1]
            else:
                status, text = fetched[i][0], _text(fetched[i][1])
                raise CallbackError(status, f"callback answered {status} {_phrase(status)}: {text}")
            result = steps.transform_one(path, query, data)
            dest = steps.destination(path, query, node)
            if dest is None:
                out[i] = (200, result)
                held += len(result)
                continue
            url, rest = dest
            item = batches.item_path(url) if batches and not rest and len(result) <= PUT_ITEM_LIMIT else None
            if item is None:
                out[i] = (DELIVERED, str(steps.put_one(url, rest, bytes(result))).encode())
                continue
            puts.append((i, item, bytes(result), url))
            held += len(result)
        except Exception as exc:
            out[i] = steps.failed(path, exc)
    if puts:
        _deliver(puts, items, steps, batches, out)
    return [verdict or (NOT_RUN, b"") for verdict in out]


def _deliver(
    puts: list[tuple[int, str, bytes, str]],
    items: Sequence[tuple[str, bytes | memoryview]],
    steps: PullSteps,
    batches: TargetBatches | None,
    out: list[Verdict | None],
) -> None:
    """PUT the results in one batch; those it did not take go one by one."""
    answers = batches.put([(item, result) for _, item, result, _ in puts]) if batches else None
    for k, (i, _, result, url) in enumerate(puts):
        path = items[i][0]
        try:
            if answers is None or answers[k][0] == NOT_RUN:
                out[i] = (DELIVERED, str(steps.put_one(url, "", result)).encode())
                continue
            status, payload = answers[k]
            if status == DELIVERED:
                out[i] = (DELIVERED, payload)
                continue
            raise DirectPutError(
                status if status >= 400 else 502,
                f"direct put answered {status} {_phrase(status)}: {_text(payload)}",
            )
        except Exception as exc:
            out[i] = steps.failed(path, exc)
