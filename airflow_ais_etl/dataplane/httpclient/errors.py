"""How a request failed, by where it failed, so callers know what is safe to re-send."""

from __future__ import annotations


class HTTPClientError(Exception):
    """A request failed in transport (never raised for an HTTP status)."""


class ConnectionFailed(HTTPClientError):
    """The request failed before any byte of the answer arrived: re-sending it is safe.

    :param cause: the socket error, or ``None`` when the server closed the connection without answering
    :param reused: the connection came from the pool (the server may have closed it while idle)
    """

    def __init__(self, message: str, cause: BaseException | None, *, reused: bool) -> None:
        super().__init__(message)
        self.cause = cause
        self.reused = reused


class ProtocolError(HTTPClientError):
    """The answer was malformed, or the connection broke inside the response head."""


class BodyError(HTTPClientError):
    """The response body ended early, was malformed, or was aborted by the server."""


class RequestBodyError(HTTPClientError):
    """A streamed request body did not match the size announced for it."""


def describe(err: BaseException | None) -> str:
    """Name a socket error for a message (``None``: the server closed the connection)."""
    if err is None:
        return "closed by the server"
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
