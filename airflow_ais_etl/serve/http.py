"""The glue between Starlette and the routes: one wrapper that reads the request, runs the route off
the event loop, and turns every failure into AIS's JSON error answer.

Routes are plain functions of a :class:`Call` (request parts already read) that return a Starlette
``Response``; they block (the service starts processes and takes file locks), so they run in the
thread pool and the event loop stays free for other clients.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.from_thread
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from airflow_ais_etl.serve.errors import BAD_REQUEST, AisHttpError, error_body, http_error_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping

    from starlette.requests import Request

    from airflow_ais_etl.serve.context import ServeContext

__all__ = ["Call", "endpoint", "error_response", "json_answer", "text_answer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Call:
    """One request as a route sees it."""

    ctx: ServeContext
    method: str
    path: str
    params: Mapping[str, Any]
    """Path parameters (``name``, ``bck``, ``obj``)."""
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    stream: AsyncIterator[bytes] | None = None
    """The unread body (routes made with ``read_body=False``); read it with :meth:`chunks`."""

    def chunks(self) -> Iterator[bytes]:
        """Yield the body chunk by chunk from the route's thread (never the whole body in memory)."""
        stream = self.stream
        if stream is None:
            if self.body:
                yield self.body
            return

        async def next_chunk() -> bytes | None:
            try:
                return await stream.__anext__()
            except StopAsyncIteration:
                return None

        while (chunk := anyio.from_thread.run(next_chunk)) is not None:
            if chunk:
                yield chunk

    def json(self) -> Any:
        """The body as JSON (``None`` when empty); a malformed body is a 400 that says so."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise AisHttpError(BAD_REQUEST, f"request body is not valid JSON: {exc}") from None

    def action(self) -> tuple[str, Any, str]:
        """AIS's ``ActionMsg`` body: ``(action, value, name)``."""
        msg = self.json()
        if not isinstance(msg, dict) or not isinstance(msg.get("action"), str):
            raise AisHttpError(BAD_REQUEST, 'expected an action message: {"action": ..., "value": ...}')
        return msg["action"], msg.get("value"), str(msg.get("name") or "")


def error_response(err: AisHttpError, method: str, path: str) -> Response:
    if method == "HEAD":  # no body: AIS puts the message in a header
        return Response(
            b"",
            status_code=err.status,
            headers={"ais-error": err.message.encode("unicode_escape").decode("ascii")},
        )
    return Response(error_body(err, method, path), status_code=err.status, media_type="application/json")


def json_answer(data: Any) -> Response:
    return JSONResponse(data)


def text_answer(text: str) -> Response:
    return Response(text, media_type="text/plain; charset=utf-8")


def endpoint(
    route: Callable[[Call], Response], *, read_body: bool = True
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``route`` as a Starlette endpoint (body read first, route run in the thread pool)."""

    async def run(request: Request) -> Response:
        method, path = request.method, request.url.path
        try:
            call = Call(
                ctx=request.app.state.ctx,
                method=method,
                path=path,
                params=dict(request.path_params),
                query=dict(request.query_params),
                headers=dict(request.headers),
                body=await request.body() if read_body else b"",
                stream=None if read_body else request.stream(),
            )
            return await run_in_threadpool(route, call)
        except Exception as exc:  # every failure becomes AIS's error answer
            err = http_error_of(exc)
            if err.status >= 500:
                log.exception("%s %s failed", method, path)
            return error_response(err, method, path)

    return run
