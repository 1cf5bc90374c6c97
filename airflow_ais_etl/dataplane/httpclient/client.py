"""The client's entry point: route each request to its host's pool and write the request."""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING

from airflow_ais_etl.dataplane.httpclient.pool import HostPool

if TYPE_CHECKING:
    from collections.abc import AsyncIterable

    from airflow_ais_etl.dataplane.httpclient.response import Response

_ONE_WRITE = 256 << 10
"""Bodies up to this size go into the same buffer (and usually the same send) as the head."""
_DEFAULT_PORTS = {"http": 80, "https": 443}


@functools.lru_cache(maxsize=256)
def _origin(origin: str) -> tuple[str, str, int, str]:
    """Split ``scheme://host[:port]`` into scheme, host, port and the ``Host`` field."""
    scheme, sep, netloc = origin.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS or not netloc or "@" in netloc:
        raise ValueError(f"unsupported URL origin {origin!r} (want http://host[:port] or https://...)")
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = netloc.partition(":")
    try:
        port = int(port_text) if port_text else _DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError(f"bad port in URL origin {origin!r}") from None
    return scheme, host, port, netloc


def split_url(url: str) -> tuple[str, str]:
    """Split a URL into its origin and its request target (path and query, at least ``/``)."""
    start = url.find("://")
    slash = url.find("/", start + 3 if start >= 0 else 0)
    if slash < 0:
        return url, "/"
    return url[:slash], url[slash:]


class HTTPClient:
    """A pool of keep-alive HTTP/1.1 connections per host; call :meth:`close` when done.

    :param limit_per_host: most connections open to one host at a time (more requests wait)
    :param keepalive: seconds an idle connection is kept for reuse
    """

    def __init__(self, *, limit_per_host: int = 64, keepalive: float = 30.0) -> None:
        if limit_per_host < 1:
            raise ValueError(f"limit_per_host must be at least 1, got {limit_per_host}")
        self.limit_per_host = limit_per_host
        self.keepalive = keepalive
        self._pools: dict[str, HostPool] = {}
        self._closed = False

    def _pool(self, origin: str) -> HostPool:
        pool = self._pools.get(origin)
        if pool is None:
            if self._closed:
                raise RuntimeError("HTTP client is closed")
            scheme, host, port, host_header = _origin(origin)
            pool = HostPool(
                asyncio.get_running_loop(),
                scheme,
                host,
                port,
                host_header,
                self.limit_per_host,
                self.keepalive,
            )
            self._pools[origin] = pool
        return pool

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | bytearray | memoryview | AsyncIterable[bytes] | None = None,
        size: int | None = None,
        headers: str = "",
        timeout: float | None = None,
        fresh: bool = False,
    ) -> Response:
        """Send one request and return the answer once its head is in (the body follows).

        :param url: an already escaped absolute URL
        :param body: bytes, an async iterable of chunks (sent as it is read, alongside the answer),
            or ``None`` (no body; a ``PUT`` then says ``Content-Length: 0``)
        :param size: the length of a streamed body (``None``: chunked transfer encoding)
        :param headers: extra header lines, each ending with ``\\r\\n``
        :param timeout: seconds for the whole exchange, answer body included (``None``: no limit)
        :param fresh: open a new connection instead of reusing an idle one
        :raises ConnectionFailed: nothing of the answer arrived (safe to re-send)
        :raises ProtocolError: a bad or cut answer head
        :raises TimeoutError: the deadline passed
        """
        origin, target = split_url(url)
        pool = self._pools.get(origin) or self._pool(origin)
        loop = pool.loop
        deadline = None if timeout is None else loop.time() + timeout
        conn = await pool.acquire(deadline, fresh)
        upload: asyncio.Task[None] | None = None
        try:
            head = f"{method} {target} HTTP/1.1\r\nHost: {pool.host_header}\r\n{headers}"
            waiter = conn.begin(deadline, timeout or 0.0, method == "HEAD")
            if body is None:
                if method in ("PUT", "POST", "PATCH"):
                    head += "Content-Length: 0\r\n"
                conn.write((head + "\r\n").encode())
            elif isinstance(body, bytes | bytearray | memoryview):
                n = len(body)
                raw = f"{head}Content-Length: {n}\r\n\r\n".encode()
                if n <= _ONE_WRITE:
                    conn.write(raw + body)
                else:
                    conn.write(raw)
                    conn.write(body)
            else:
                if size is None:
                    head += "Transfer-Encoding: chunked\r\n"
                else:
                    head += f"Content-Length: {size}\r\n"
                conn.write((head + "\r\n").encode())
                upload = loop.create_task(conn.upload(body, size))
            resp = await waiter
        except BaseException:
            conn.abort()
            if upload is not None and not upload.done():
                upload.cancel()
            raise
        resp.upload = upload
        return resp

    async def close(self) -> None:
        """Close every connection; requests still running fail."""
        self._closed = True
        pools = list(self._pools.values())
        self._pools.clear()
        for pool in pools:
            pool.close()
        await asyncio.sleep(0)  # let the transports run their connection_lost callbacks
