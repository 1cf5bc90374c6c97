"""A small keep-alive HTTP/1.1 client on asyncio, built for many small requests to a few pods.

Why not aiohttp: the offline engine sends tens of thousands of small objects per second through
one process, and a general-purpose client spends most of the per-object CPU (measured with
bench/offline_bench.py). This client does only what the communicators need: one request at a
time per connection, a per-host pool of keep-alive connections, the request head and a small body
in one buffer, the runtime's sans-IO parser (:mod:`airflow_ais_etl.runtime.http1`) for answers
(``Content-Length``, chunked, or close-delimited bodies) and streaming with back-pressure both
ways for large objects.

It reports failures by where they happened, so callers can decide what is safe to re-send:
:class:`ConnectionFailed` before any response byte, :class:`ProtocolError` for a bad or cut
response head, :class:`BodyError` for a body that ended early or was malformed,
:class:`TimeoutError` when the request's deadline passed.

Modules: :mod:`.client` (entry point), :mod:`.pool` (per-host pools), :mod:`.connection` (one
exchange at a time on one connection), :mod:`.response` (the answer and its body), :mod:`.errors`.
"""

from __future__ import annotations

from airflow_ais_etl.dataplane.httpclient.client import HTTPClient, split_url
from airflow_ais_etl.dataplane.httpclient.errors import (
    BodyError,
    ConnectionFailed,
    HTTPClientError,
    ProtocolError,
    RequestBodyError,
)
from airflow_ais_etl.dataplane.httpclient.response import Headers, Response

__all__ = [
    "BodyError",
    "ConnectionFailed",
    "HTTPClient",
    "HTTPClientError",
    "Headers",
    "ProtocolError",
    "RequestBodyError",
    "Response",
    "split_url",
]
