"""Direct put of a streaming transform's output: the writer's chunks become the body of the PUT.

A streaming transform (``CHUNK_SIZE > 0``) writes its result piece by piece. When the request
carries ``Ais-Node-Url``, :class:`DirectPutStream` takes the place of the HTTP answer behind the
:class:`~airflow_ais_etl.runtime.streams.StreamWriter`: a short result goes out as one PUT with
``Content-Length``, a longer one as a chunked PUT sent while the transform runs, so the pod holds
a few chunks, never the whole object. If the transform or the PUT fails midway the connection to
the receiver is reset before the last chunk: the receiver (the target gateway writes into a temp
file and renames it only after a complete body) keeps nothing, and the request gets a clean error
status, because nothing of the answer has been sent yet.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from airflow_ais_etl.etl.constants import HDR_NODE_URL
from airflow_ais_etl.runtime.aisproto import (
    DIRECT_PUT_TIMEOUT,
    DirectPutError,
    delivered_length,
    direct_put,
    open_put,
)
from airflow_ais_etl.runtime.http1.chunked import CRLF, LAST_CHUNK, chunk_size_line

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DirectPutStream"]

_T = TypeVar("_T")

_REFUSAL_WAIT = 5.0
"""How long to wait for the receiver's reason after it broke the PUT off (it answers at once)."""
_JOIN_LIMIT = 64 * 1024
"""Chunks up to this size are framed into one buffer (one send); larger ones are sent in place."""


class DirectPutStream:
    """A response sink (``streams.ResponseSink``) that delivers the result to ``url`` by PUT.

    After :meth:`send_response` or :meth:`end_chunked` returned, :attr:`delivered` holds the length
    the receiver stored. :meth:`close` resets an unfinished PUT, so a cut result is never stored.
    """

    def __init__(self, url: str, rest: str = "", timeout: float = DIRECT_PUT_TIMEOUT) -> None:
        self.url = url
        self.rest = rest
        self.timeout = timeout
        self.delivered: int | None = None
        self.sent = 0
        """Body bytes sent so far (chunked PUT)."""
        self._conn: http.client.HTTPConnection | None = None

    # ---------------------------------------------------------------- ResponseSink

    def send_response(self, status: int, body: bytes | bytearray | memoryview) -> None:
        """The whole result is known (short): one PUT with ``Content-Length``; ``status`` is unused."""
        self.delivered = direct_put(self.url, bytes(body), self.rest, self.timeout)

    def start_chunked(self) -> None:
        """Connect and send the head of a chunked PUT."""
        conn, target = open_put(self.url, self.timeout)
        self._conn = conn
        self._guard(lambda: self._send_head(conn, target))

    def send_chunk(self, data: bytes | bytearray | memoryview) -> None:
        """Send one chunk of the body (blocking: the pod never queues more than this chunk)."""
        size = len(data)
        if not size:
            return
        if size <= _JOIN_LIMIT:
            self._guard(lambda: self._send(chunk_size_line(size) + bytes(data) + CRLF))
        else:
            self._guard(lambda: self._send(chunk_size_line(size), data, CRLF))
        self.sent += size

    def end_chunked(self) -> None:
        """Send the last chunk and read the receiver's answer: the result is stored only now."""
        conn = self._live()
        self._guard(lambda: self._send(LAST_CHUNK))
        self.delivered = self._guard(lambda: delivered_length(conn, self.sent))
        self.close()

    # ---------------------------------------------------------------- ending

    def close(self) -> None:
        """Close the connection; reset it first when the body is unfinished, so the receiver discards it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self.delivered is None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    # ---------------------------------------------------------------- helpers

    def _send_head(self, conn: http.client.HTTPConnection, target: str) -> None:
        conn.putrequest("PUT", target, skip_accept_encoding=True)
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Transfer-Encoding", "chunked")
        if self.rest:
            conn.putheader(HDR_NODE_URL, self.rest)
        conn.endheaders()

    def _send(self, *parts: bytes | bytearray | memoryview) -> None:
        conn = self._live()
        for part in parts:
            conn.send(part)

    def _live(self) -> http.client.HTTPConnection:
        if self._conn is None:
            raise DirectPutError(502, f"direct put to {self._where()} is not open")
        return self._conn

    def _guard(self, step: Callable[[], _T]) -> _T:
        """Run one step of the PUT; a transport failure becomes :class:`DirectPutError` (with the receiver's reason if it gave one)."""
        try:
            return step()
        except DirectPutError:
            self.close()
            raise
        except (OSError, http.client.HTTPException) as exc:
            reason = None if isinstance(exc, TimeoutError) else self._refusal()
            self.close()
            raise DirectPutError(
                reason.status if reason else 502,
                reason.message if reason else f"direct put to {self._where()} failed: {exc}",
            ) from exc

    def _refusal(self) -> DirectPutError | None:
        """The receiver's answer when it refused the PUT before reading the body (e.g. 403), if readable."""
        conn = self._conn
        if conn is None:
            return None
        try:
            if conn.sock is not None:
                conn.sock.settimeout(_REFUSAL_WAIT)
            delivered_length(conn, self.sent)
        except DirectPutError as answer:
            return answer
        except (OSError, http.client.HTTPException):
            return None
        return None

    def _where(self) -> str:
        return urlsplit(self.url).netloc
