"""The ASGI app: AIS's routes, the bearer-token gate in front of all of them, AIS-style 404/405."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from airflow_ais_etl.serve.auth import authorized
from airflow_ais_etl.serve.bucket_routes import bucket_routes
from airflow_ais_etl.serve.cluster_routes import cluster_routes
from airflow_ais_etl.serve.errors import UNAUTHORIZED, AisHttpError, error_body
from airflow_ais_etl.serve.etl_routes import etl_routes
from airflow_ais_etl.serve.http import error_response
from airflow_ais_etl.serve.object_routes import object_routes

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.types import ASGIApp, Receive, Scope, Send

    from airflow_ais_etl.serve.context import ServeContext

__all__ = ["build_app"]


class TokenGate:
    """Answer 401 to any HTTP request without ``Authorization: Bearer <token>`` (when a token is set)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.token:
            header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
            if not authorized(header, self.token):
                err = AisHttpError(
                    UNAUTHORIZED,
                    "token required: this ais-etl serve needs Authorization: Bearer <token> "
                    "(aistore SDK: Client(url, token=...))",
                )
                body = error_body(err, scope.get("method", ""), scope.get("path", ""))
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({"type": "http.response.start", "status": err.status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    what = "no such endpoint" if exc.status_code == 404 else "unsupported method"
    err = AisHttpError(
        exc.status_code, f"{what}: {request.method} {request.url.path} (ais-etl serve; see docs/serve.md)"
    )
    return error_response(err, request.method, request.url.path)


def build_app(ctx: ServeContext, token: str = "") -> Starlette:
    """Return the app serving ``ctx``; jobs still running at shutdown are aborted and waited for."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        ctx.jobs.shutdown()

    app = Starlette(
        routes=[*etl_routes(), *bucket_routes(), *object_routes(), *cluster_routes()],
        middleware=[Middleware(TokenGate, token=token)],
        exception_handlers={404: _http_error, 405: _http_error},
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    return app
