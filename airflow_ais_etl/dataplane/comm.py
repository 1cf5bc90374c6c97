"""Communicators, client side: send one object to a transformation pod and stream back the result.

One :class:`PodClient` owns one pool of keep-alive connections (:mod:`airflow_ais_etl.dataplane.httpclient`) for
a whole job, so per-object cost is a request, not a connection. Requests are built exactly as the
reference target builds them (ais-etl-semantics §4.2–§4.4); what changes is the handling of
answers: a non-2xx status or a body that ends early fails the object instead of becoming its
content.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from airflow_ais_etl.dataplane.httpclient import (
    ConnectionFailed,
    HTTPClient,
    HTTPClientError,
    RequestBodyError,
)
from airflow_ais_etl.dataplane.podaccess import access_headers
from airflow_ais_etl.dataplane.podrequest import build_request, join_url
from airflow_ais_etl.dataplane.wscomm import WsComm
from airflow_ais_etl.etl.constants import (
    ARG_FQN,
    HDR_NODE_URL,
)
from airflow_ais_etl.etl.errors import TransformError, ValidationError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping
    from types import TracebackType

    from airflow_ais_etl.cluster.base import BucketRef, PodEndpoint
    from airflow_ais_etl.dataplane.httpclient import Response

__all__ = [
    "Body",
    "FailureKind",
    "PodClient",
    "PodResponse",
    "RetryPolicy",
    "build_request",
]

Body = bytes | Callable[[], AsyncIterable[bytes] | bytes] | None
"""What to send: bytes (re-sendable as is), a factory that re-opens the source for every attempt, or nothing."""

_MESSAGE_CAP = 2048
_CHUNK = 1 << 20
_PUSH_HEADERS = "Content-Type: application/octet-stream\r\n"
_SOFT_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.EPIPE})
_TIMEOUTS = (TimeoutError, asyncio.TimeoutError)  # distinct classes before Python 3.11

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """When to re-send a request that failed before any response byte (§4.6, as fixed in §9).

    Soft failures are refused, reset or broken connections; hard ones are connections the server
    closed without answering. Sleep ``first_sleep`` after the first failure, ``step`` more after each
    next one; give up once soft failures exceed ``max_soft`` or hard ones exceed ``max_hard``.
    Timeouts and HTTP statuses are never retried.
    """

    first_sleep: float = 0.05
    step: float = 0.025
    max_sleep: float = 1.0
    max_soft: int = 5
    max_hard: int = 2


class PodResponse:
    """The pod's successful (2xx) answer; read it with :meth:`read` or :meth:`iter_chunks`.

    The connection goes back to the pool once the whole body has arrived; use the response as an
    async context manager (or call :meth:`close`) when you may stop early.
    """

    __slots__ = ("_endpoint", "_obj", "_resp", "_timeout", "content_length", "headers", "status")

    def __init__(self, resp: Response, endpoint: PodEndpoint, obj: str, timeout: float | None):
        self._resp = resp
        self._endpoint = endpoint
        self._obj = obj
        self._timeout = timeout
        self.status: int = resp.status
        self.content_length: int | None = resp.content_length
        self.headers: Mapping[str, str] = resp.headers

    def _error(self, reason: str) -> TransformError:
        return TransformError(
            reason,
            object_name=self._obj,
            status=self.status,
            target=self._endpoint.target_id,
            pod_name=self._endpoint.pod_name,
        )

    def _body_error(self, err: BaseException) -> TransformError:
        if isinstance(err, _TIMEOUTS):
            return self._error(f"transform of {self._obj!r} timed out after {self._timeout}s while reading")
        return self._error(f"response for {self._obj!r} ended early: {_describe(err)}")

    async def read(self) -> bytes:
        """Return the whole transformed object (for small objects)."""
        try:
            return await self._resp.read()
        except (HTTPClientError, OSError, asyncio.TimeoutError) as err:
            raise self._body_error(err) from err

    async def iter_chunks(self, chunk_size: int = _CHUNK) -> AsyncIterator[bytes]:
        """Yield the transformed object in chunks of at most ``chunk_size`` bytes."""
        try:
            async for chunk in self._resp.iter_chunks(chunk_size):
                yield chunk
        except (HTTPClientError, OSError, asyncio.TimeoutError) as err:
            raise self._body_error(err) from err

    async def drain_into(self, write: Callable[[bytes | memoryview], object]) -> int:
        """Hand the transformed object to ``write`` piece by piece as it arrives; return its length.

        Pieces may be views of the socket's buffer: ``write`` consumes each before it returns.
        """
        try:
            return await self._resp.drain_into(write)
        except (HTTPClientError, OSError, asyncio.TimeoutError) as err:
            raise self._body_error(err) from err

    def close(self) -> None:
        """Drop the response (and its connection, if unread)."""
        self._resp.close()

    async def __aenter__(self) -> PodResponse:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._resp.complete:
            self._resp.close()


def _describe(err: BaseException) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class FailureKind(str, Enum):
    """A connection failure before any response byte that the retry policy may retry."""

    SOFT = "soft"
    """Refused, reset or broken connections."""
    HARD = "hard"
    """The pod closed the connection without answering."""

    def __str__(self) -> str:
        return self.value


def _retry_kind(err: BaseException) -> FailureKind | None:
    """Classify a failure before any response byte; ``None``: not retryable.

    Anything but a failed connection (timeouts, unreachable hosts, bad answers) is not retried.
    """
    if not isinstance(err, ConnectionFailed):
        return None
    cause = err.cause
    if cause is None:
        return FailureKind.HARD
    if isinstance(cause, ConnectionResetError | BrokenPipeError | ConnectionRefusedError):
        return FailureKind.SOFT
    if isinstance(cause, OSError) and cause.errno in _SOFT_ERRNOS:
        return FailureKind.SOFT
    return None


class _Attempts:
    """The connection failures of one request so far, and when to send it again."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.soft = 0
        self.hard = 0
        self.delay = policy.first_sleep
        self.fresh = False
        """Send the next attempt on a new connection, not a pooled one."""

    def stale_connection(self, err: BaseException) -> bool:
        """Tell whether a pooled connection died while it idled: re-send at once, on a new one."""
        if isinstance(err, ConnectionFailed) and err.reused and not self.fresh:
            self.fresh = True
            return True
        return False

    def exhausted(self, kind: FailureKind | None) -> bool:
        """Count a failure of ``kind``; tell whether the request must give up."""
        if kind is FailureKind.SOFT:
            self.soft += 1
        elif kind is FailureKind.HARD:
            self.hard += 1
        return kind is None or self.soft > self.policy.max_soft or self.hard > self.policy.max_hard

    def count(self, kind: FailureKind | None) -> int:
        """Return how many attempts were made, the last one (of ``kind``) included."""
        return self.soft + self.hard + (0 if kind else 1)

    async def back_off(self) -> None:
        """Sleep before the next attempt, a step longer each time."""
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay + self.policy.step, self.policy.max_sleep)
        self.fresh = False


def _request_body(
    method: str,
    comm_type: str,
    arg_type: str,
    obj: str,
    body: Body,
    body_factory: Callable[[], AsyncIterable[bytes] | bytes] | None,
) -> Body:
    """Return what the request carries (``None`` unless it pushes the object); refuse unusable bodies."""
    if body_factory is not None:
        if body is not None:
            raise TypeError("pass either body or body_factory, not both")
        body = body_factory
    sends_object = method == "PUT" and arg_type != ARG_FQN
    if sends_object and body is None:
        raise ValidationError(f"comm-type {comm_type} sends the object: a body is required for {obj!r}")
    if body is not None and not (isinstance(body, bytes | bytearray | memoryview) or callable(body)):
        raise TypeError("body must be bytes or a callable that re-opens the source for every attempt")
    return body if sends_object else None


class PodClient:
    """Talk to transformation pods over pooled keep-alive connections; use as ``async with``.

    :param request_timeout: seconds for one whole request, answer included (``None``: no limit)
    :param limit_per_host: most connections kept to one pod
    :param retry: retry policy for connection failures
    """

    def __init__(
        self,
        *,
        request_timeout: float | None,
        limit_per_host: int = 64,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.request_timeout = request_timeout
        self.limit_per_host = limit_per_host
        self.retry = retry or RetryPolicy()
        self._http: HTTPClient | None = None
        self._ws: WsComm | None = None

    async def __aenter__(self) -> PodClient:
        self._http = HTTPClient(limit_per_host=self.limit_per_host, keepalive=30.0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def ws(self) -> WsComm:
        """The ``ws://`` connections of this client (opened on first use, closed with it)."""
        if self._ws is None:
            self._ws = WsComm(self.request_timeout)
        return self._ws

    async def close(self) -> None:
        """Close the pool and its connections."""
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def http(self) -> HTTPClient:
        if self._http is None:
            raise RuntimeError("PodClient is not open: use 'async with PodClient(...)'")
        return self._http

    async def transform(
        self,
        endpoint: PodEndpoint,
        *,
        comm_type: str,
        arg_type: str,
        bucket_ref: BucketRef | None,
        obj: str,
        body: Body = None,
        size: int | None = None,
        fqn: str | None = None,
        body_factory: Callable[[], AsyncIterable[bytes] | bytes] | None = None,
        protocol: str = "",
        etl_args: str = "",
        direct_put_url: str | None = None,
        extra_headers: str = "",
    ) -> PodResponse:
        """Send object ``obj`` to the pod at ``endpoint`` and return its 2xx answer.

        :param body: for hpush/io with the default arg type: the object as bytes, or a factory that
            returns a fresh async iterable of chunks (or bytes) for every attempt
        :param size: the object's size, sent as ``Content-Length`` when the body is streamed
        :param fqn: the object's local file name (arg type ``fqn``)
        :param body_factory: another name for a callable ``body``
        :param protocol: the ETL's protocol generation (see :func:`build_request`)
        :param etl_args: per-request arguments for the transform (query ``etl_args``)
        :param direct_put_url: ask the pod to PUT its result there (header ``Ais-Node-Url``); the pod
            then answers 204 with ``Ais-Direct-Put-Length``, or 200 with the result if it cannot
        :param extra_headers: more header lines (``Name: value\r\n``), e.g. ``dataplane.batcher``'s
        :raises TransformError: non-2xx answer, timeout, or connection failure after retries
        """
        method, url = build_request(
            endpoint,
            comm_type=comm_type,
            arg_type=arg_type,
            bucket_ref=bucket_ref,
            obj=obj,
            fqn=fqn,
            protocol=protocol,
            etl_args=etl_args,
        )
        body = _request_body(method, comm_type, arg_type, obj, body, body_factory)
        headers = (_PUSH_HEADERS if method == "PUT" else "") + access_headers(endpoint, arg_type, bucket_ref)
        if direct_put_url:
            headers += f"{HDR_NODE_URL}: {direct_put_url}\r\n"
        headers += extra_headers
        resp = await self._send(endpoint, obj, method, url, body, size, headers)
        if 200 <= resp.status < 300:
            return PodResponse(resp, endpoint, obj, self.request_timeout)
        raise await self._status_error(resp, endpoint, obj)

    async def _send(
        self,
        endpoint: PodEndpoint,
        obj: str,
        method: str,
        url: str,
        body: Body,
        size: int | None,
        headers: str,
    ) -> Response:
        """Send one request, again after connection failures as far as the retry policy allows."""
        attempts = _Attempts(self.retry)
        while True:
            data = body() if callable(body) else body
            try:
                return await self.http.request(
                    method,
                    url,
                    body=data,
                    size=size,
                    headers=headers,
                    timeout=self.request_timeout,
                    fresh=attempts.fresh,
                )
            except (HTTPClientError, OSError, asyncio.TimeoutError) as err:
                await self._after_failure(err, attempts, endpoint, obj, method, url)

    async def _after_failure(
        self,
        err: BaseException,
        attempts: _Attempts,
        endpoint: PodEndpoint,
        obj: str,
        method: str,
        url: str,
    ) -> None:
        """Raise the object's error when ``err`` is final; otherwise return when to send again."""
        if isinstance(err, _TIMEOUTS):
            raise self._error(
                endpoint, obj, f"transform of {obj!r} timed out after {self.request_timeout}s"
            ) from err
        if isinstance(err, RequestBodyError):
            raise self._error(endpoint, obj, f"cannot send {obj!r}: {err}") from err
        if attempts.stale_connection(err):
            log.debug("re-sending %s %s on a new connection after %s", method, url, _describe(err))
            return
        kind = _retry_kind(err)
        if attempts.exhausted(kind):
            raise self._error(
                endpoint,
                obj,
                f"cannot reach pod at {endpoint.url} ({attempts.count(kind)} attempt(s)): {_describe(err)}",
            ) from err
        log.debug(
            "retrying %s %s in %.3fs after %s (%d soft, %d hard failures)",
            method,
            url,
            attempts.delay,
            _describe(err),
            attempts.soft,
            attempts.hard,
        )
        await attempts.back_off()

    def _error(
        self, endpoint: PodEndpoint, obj: str, reason: str, status: int | None = None
    ) -> TransformError:
        return TransformError(
            reason, object_name=obj, status=status, target=endpoint.target_id, pod_name=endpoint.pod_name
        )

    async def _status_error(self, resp: Response, endpoint: PodEndpoint, obj: str) -> TransformError:
        """Build the error for a non-2xx answer, carrying the start of the pod's message."""
        raw, _ = await resp.read_some(_MESSAGE_CAP)
        message = raw.decode("utf-8", errors="replace").strip()
        reason = f"transform of {obj!r} failed: pod answered {resp.status} {resp.reason or ''}".rstrip()
        if message:
            reason += f": {message}"
        return self._error(endpoint, obj, reason, status=resp.status)

    async def health(self, endpoint: PodEndpoint, *, timeout: float = 5.0) -> tuple[bool, str]:
        """Ask the pod's readiness path; return whether it is ready and what it said."""
        try:
            resp = await self.http.request("GET", join_url(endpoint.url, "/health"), timeout=timeout)
            raw, _ = await resp.read_some(_MESSAGE_CAP)
        except (HTTPClientError, OSError, asyncio.TimeoutError) as err:
            if isinstance(err, _TIMEOUTS):
                return False, f"no answer from {endpoint.url} within {timeout}s"
            return False, _describe(err)
        text = raw.decode("utf-8", errors="replace").strip()
        return 200 <= resp.status < 300, text or f"HTTP {resp.status}"
