"""The ``ws://`` communicator: AIS's WebSocket framing over persistent connections to each pod.

Per object (``ext/etl/websocket_comm.go`` writeLoop/readLoop, ``fastapi_server.py``
``_handle_ws_message``): a binary message with the JSON control message ``{"path", "etl_args",
"fqn", "pipeline"}`` (empty fields left out), then, unless ``fqn``, a binary message with the
object. The answer is one binary message (the result) or one text message: the delivered length
after a direct put, or an error. A connection carries one request at a time and goes back to its
pod's pool afterwards, so a job keeps one connection per busy worker for its whole run.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.dataplane.wsclient import WebSocket, WebSocketError, connect
from airflow_ais_etl.etl.constants import HDR_DIRECT_PUT_LENGTH
from airflow_ais_etl.etl.errors import TransformError
from airflow_ais_etl.etl.naming import path_escape

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from types import TracebackType

    from airflow_ais_etl.cluster.base import PodEndpoint

__all__ = ["WsComm", "WsResponse", "ws_url"]

_TIMEOUTS = (TimeoutError, asyncio.TimeoutError)


def ws_url(endpoint: PodEndpoint) -> str:
    """Return the pod's WebSocket endpoint: ``ws://<host:port>/ws``."""
    return "ws://" + endpoint.url.split("://", 1)[-1].rstrip("/") + "/ws"


class WsResponse:
    """A WebSocket answer shaped like :class:`~airflow_ais_etl.dataplane.comm.PodResponse`."""

    def __init__(self, data: bytes, *, delivered: int | None = None) -> None:
        self._data = data
        self.status = 200 if delivered is None else 204
        self.content_length: int | None = len(data)
        self.headers: dict[str, str] = {} if delivered is None else {HDR_DIRECT_PUT_LENGTH: str(delivered)}

    async def read(self) -> bytes:
        return self._data

    async def iter_chunks(self, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        view = memoryview(self._data)
        for i in range(0, len(view), chunk_size):
            yield bytes(view[i : i + chunk_size])

    async def drain_into(self, write: Callable[[bytes | memoryview], object]) -> int:
        write(self._data)
        return len(self._data)

    def close(self) -> None:
        self._data = b""

    async def __aenter__(self) -> WsResponse:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class WsComm:
    """Pools of persistent WebSocket connections, one pool per pod."""

    def __init__(self, request_timeout: float | None) -> None:
        self.request_timeout = request_timeout
        self._idle: dict[str, list[WebSocket]] = {}

    async def transform(
        self,
        endpoint: PodEndpoint,
        *,
        obj: str,
        body: bytes | None,
        fqn: str | None = None,
        etl_args: str = "",
        direct_put_url: str | None = None,
    ) -> WsResponse:
        """Send one object over a pooled connection and return the pod's answer.

        :raises TransformError: the pod answered an error, the connection failed, or it timed out
        """
        ctrl: dict[str, Any] = {"path": obj}
        if etl_args:
            ctrl["etl_args"] = etl_args
        if fqn:
            ctrl["fqn"] = path_escape(fqn)
        if direct_put_url:
            ctrl["pipeline"] = direct_put_url
        pool = self._idle.setdefault(endpoint.url, [])
        ws = pool.pop() if pool else None
        try:
            if ws is None:
                ws = await connect(ws_url(endpoint), timeout=self.request_timeout)
            is_text, data = await asyncio.wait_for(self._exchange(ws, ctrl, body), self.request_timeout)
        except (WebSocketError, OSError, *_TIMEOUTS) as exc:
            if ws is not None:
                await ws.close()
            reason = (
                f"timed out after {self.request_timeout}s" if isinstance(exc, _TIMEOUTS) else f"failed: {exc}"
            )
            raise self._error(endpoint, obj, f"ws transform of {obj!r} {reason}") from exc
        pool.append(ws)
        if not is_text:
            return WsResponse(data)
        text = data.decode("utf-8", "replace").strip()
        if direct_put_url and text.isdigit():
            return WsResponse(b"", delivered=int(text))
        raise self._error(endpoint, obj, f"transform of {obj!r} failed: pod answered: {text}")

    @staticmethod
    async def _exchange(ws: WebSocket, ctrl: dict[str, Any], body: bytes | None) -> tuple[bool, bytes]:
        await ws.send(json.dumps(ctrl).encode())
        if body is not None:
            await ws.send(body)
        return await ws.receive()

    @staticmethod
    def _error(endpoint: PodEndpoint, obj: str, reason: str) -> TransformError:
        return TransformError(reason, object_name=obj, target=endpoint.target_id, pod_name=endpoint.pod_name)

    async def close(self) -> None:
        """Close every pooled connection."""
        pools, self._idle = self._idle, {}
        for pool in pools.values():
            for ws in pool:
                await ws.close()
