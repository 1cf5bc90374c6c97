"""Batches on the target gateway: many callback GETs, or many direct PUTs, in one request.

The pods' side is ``runtime.targetbatch``. A batch goes to the callback path with nothing after
the secret and header ``X-AIS-ETL-Batch: <count>``, in ``runtime.http1.batchwire`` framing; each
item's path is what would follow the secret (``<escaped uname>?<query>``). Every item is checked
and answered as its own request would be: the same refusals, the same atomic temp-file-and-rename
write. Within one batch the grant checks are made once per bucket (for GETs) and once per token
(for PUTs, under the shared grants lock, held until the batch's objects are committed), as if the
batch were one request. Standard library only, like the gateway.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from airflow_ais_etl.cluster.gatewaypaths import Refusal, query_of
from airflow_ais_etl.runtime.http1.batchwire import DELIVERED, NOT_RUN

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_ais_etl.cluster.directput import PutGrants, PutTarget

__all__ = ["BATCH_ANSWER", "Verdict", "answer_gets", "answer_puts"]

Verdict = tuple[int, bytes]

BATCH_ANSWER = 16 << 20
"""Object bytes after which a batch GET answers the objects left with status 0 (fetch them alone)."""


class BatchServer(Protocol):
    """What the batches need of the gateway's request handler."""

    def parse_item(self, path: str) -> tuple[str, str, str]:
        """Check the secret and the uname of a callback path; return secret, bucket, object."""
        ...

    def whole_object(self, url: str, bucket: str, obj: str) -> bytes | None:
        """The object's bytes, ``None`` if too large for a batch."""
        ...

    def bucket_url(self, bucket: str, secret: str) -> str | None:
        """The URL of a bucket the secret may read."""
        ...

    def writer_for(self, target: PutTarget, obj: str) -> Any:
        """An atomic writer into a granted bucket."""
        ...

    @property
    def put_grants(self) -> PutGrants:
        """Which buckets the batch's PUTs may write."""
        ...


def _refused(err: Exception) -> Verdict:
    if isinstance(err, Refusal):
        return err.status, err.text.encode()
    return (400 if isinstance(err, ValueError) else 500), f"failed: {err}".encode()


def _memo(fn: Callable[..., Any]) -> Callable[..., Any]:
    seen: dict[tuple[Any, ...], Any] = {}

    def once(*args: Any) -> Any:
        if args not in seen:
            seen[args] = fn(*args)
        return seen[args]

    return once


def answer_gets(server: BatchServer, head: str, items: Sequence[tuple[str, Any]]) -> list[Verdict]:
    """Each object's bytes (200), its refusal, or 0 (too large, or past :data:`BATCH_ANSWER`)."""
    bucket_url = _memo(server.bucket_url)
    out: list[Verdict] = []
    answered = 0
    for path, _ in items:
        if answered >= BATCH_ANSWER:
            out.append((NOT_RUN, b""))
            continue
        try:
            secret, bucket, obj = server.parse_item(head + path)
            url = bucket_url(bucket, secret)
            if url is None:
                raise Refusal(404, f"bucket {bucket!r} does not exist")
            found = server.whole_object(url, bucket, obj)
        except Exception as err:
            out.append(_refused(err))
            continue
        out.append((200, found) if found is not None else (NOT_RUN, b""))
        answered += len(found or b"")
    return out


UPLOADS_AT_ONCE = 8
"""Objects a gateway uploads to an object store side by side (each waits on the network)."""
_uploaders: list[ThreadPoolExecutor] = []
_uploaders_lock = threading.Lock()


def _uploader() -> ThreadPoolExecutor:
    """The gateway's threads for uploads, started on first use and shared by every batch (a pool
    per batch cost 17 % of the throughput of 4 KiB objects into a store without latency)."""
    with _uploaders_lock:
        if not _uploaders:
            _uploaders.append(ThreadPoolExecutor(UPLOADS_AT_ONCE, thread_name_prefix="gateway-upload"))
        return _uploaders[0]


def _commit_all(pending: list[tuple[int, Any, int]], out: list[Verdict | None]) -> None:
    """Name every written object: those in a local directory one after another (a rename each),
    those that go to an object store :data:`UPLOADS_AT_ONCE` at a time."""

    def commit(entry: tuple[int, Any, int]) -> tuple[int, Verdict]:
        i, writer, size = entry
        try:
            writer.commit()
        except Exception as err:
            return i, _refused(err)
        return i, (DELIVERED, str(size).encode())

    uploads = [entry for entry in pending if getattr(entry[1], "uploads", False)]
    renames = [entry for entry in pending if not getattr(entry[1], "uploads", False)]
    done = [commit(entry) for entry in renames]
    if len(uploads) == 1:
        done.append(commit(uploads[0]))
    elif uploads:
        done += _uploader().map(commit, uploads)
    for i, verdict in done:
        out[i] = verdict


def answer_puts(server: BatchServer, head: str, items: Sequence[tuple[str, Any]]) -> list[Verdict]:
    """Write every object to its temp file and commit it, all under one hold of the grants lock.

    The body is in memory already, so the hold is short; a revoke waits for it and, once it
    returned, no temp file of the batch is left and no object of it can arrive.
    """
    grants = server.put_grants
    out: list[Verdict | None] = [None] * len(items)
    pending: list[tuple[int, Any, int]] = []  # index, writer, size
    with grants.held():
        allowed = _memo(grants.url_of)
        try:
            for i, (path, data) in enumerate(items):
                try:
                    _, bucket, obj = server.parse_item(head + path)
                    writer = server.writer_for(allowed(query_of(path), bucket), obj)
                    pending.append((i, writer, len(data)))
                    writer.write(bytes(data))
                except Exception as err:
                    out[i] = _refused(err)
            _commit_all([entry for entry in pending if out[entry[0]] is None], out)
        finally:
            for i, writer, _ in pending:
                if out[i] is None or out[i][0] != DELIVERED:  # type: ignore[index]
                    writer.discard()
    return [verdict or (500, b"not stored") for verdict in out]
