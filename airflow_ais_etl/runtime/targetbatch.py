"""Many callback GETs, or many direct PUTs, in one request to the target (this project's gateway).

Why: a pull batch (``runtime.http1.batchwire``) fetches and delivers dozens of small objects; one
exchange with the target per object costs the pod and the gateway far more than the objects' bytes.
The gateway (``cluster.gateway``) answers a ``GET`` or ``PUT`` to the callback path with nothing
after the secret and header ``X-AIS-ETL-Batch: <count>`` item by item, each with the status its own
request would have got, and says so with the same header in its answer. Any other target (AIS's
own) answers something else: the pod then remembers to send it one request per object.
"""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from airflow_ais_etl.runtime.connpool import exchange, host_key, shared_pool
from airflow_ais_etl.runtime.http1.batchwire import (
    BATCH_HEADER,
    BATCH_VERSION,
    BatchFormatError,
    decode_results,
    encode_items,
)

__all__ = ["TargetBatches"]

TARGET_TIMEOUT = 600.0


class TargetBatches:
    """Batched exchanges with the target at ``base_url`` (``AIS_TARGET_URL``, ending in the secret).

    Item paths are what follows the secret: ``<escaped uname>[?query]``. A method returns one
    ``(status, payload)`` per item, or ``None`` when the batch as a whole did not happen (the target
    does not take batches, or the exchange failed): then each item goes on its own.
    """

    def __init__(self, base_url: str, timeout: float = TARGET_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self._key = host_key(base_url)
        self._head = urlsplit(self.base_url).path + "/"
        self._pool = shared_pool(timeout)
        self.accepted: bool | None = None
        """Whether the target takes batches (``None``: not asked yet)."""

    def item_path(self, url: str) -> str | None:
        """Return the item path of a URL on this target (a direct put's), ``None`` for another host or path."""
        prefix = self.base_url + "/"
        return url[len(prefix) :] if url.startswith(prefix) and len(url) > len(prefix) else None

    def fetch(self, paths: list[str]) -> list[tuple[int, bytes]] | None:
        """GET many objects: ``(200, data)``, an error status and text, or 0 (too large: fetch it alone)."""
        return self._exchange("GET", [(path, b"") for path in paths])

    def put(self, items: list[tuple[str, bytes]]) -> list[tuple[int, bytes]] | None:
        """PUT many results: ``(204, delivered length)`` or an error status and text, per item."""
        return self._exchange("PUT", items)

    def _exchange(self, method: str, items: list[tuple[str, bytes]]) -> list[tuple[int, bytes]] | None:
        if self.accepted is False or not items:
            return None
        body = encode_items(items)
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(body)),
            BATCH_HEADER: str(len(items)),
        }
        try:
            conn, resp = exchange(self._pool, self._key, method, self._head, body, headers)
        except (OSError, http.client.HTTPException):
            return None
        try:
            answer = resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            return None
        self._pool.give_back(self._key, conn, resp)
        if resp.getheader(BATCH_HEADER) != BATCH_VERSION:
            if resp.status < 500:
                self.accepted = False  # not this project's gateway: one request per object from now on
            return None
        try:
            results = decode_results(answer, len(items))
        except BatchFormatError:
            return None
        self.accepted = True
        return results
