"""AIS's error answers: a JSON body with the message, so the SDK raises its own exception types.

The SDK picks the exception from the status and the message text (``aistore.sdk.response_handler``):
404 + ``etl job`` is ``ErrETLNotFound``, 404 + ``ais://b/o`` is ``ErrObjNotFound``, 404 + ``ais://b``
is ``ErrBckNotFound``, 409 likewise for "already exists". Expected failures never use 5xx: the SDK
retries 5xx answers with a backoff of seconds, which would turn a clear error into a long hang.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_ais_etl.dataplane.storage.base import ObjectNotFoundError
from airflow_ais_etl.etl.errors import (
    AbortError,
    AisEtlError,
    EtlExistsError,
    EtlNotFoundError,
    StorageError,
    ValidationError,
)
from airflow_ais_etl.etl.leases import EtlInUseError

__all__ = ["AisHttpError", "error_body", "http_error_of"]

BAD_REQUEST, UNAUTHORIZED, NOT_FOUND, METHOD_NOT_ALLOWED, CONFLICT = 400, 401, 404, 405, 409
FAILED_DEPENDENCY = 424
"""A transform or pod failure: not the client's fault, but not a 5xx the SDK would retry for minutes."""


class AisHttpError(Exception):
    """An error answer: HTTP ``status`` and the message AIS would give."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _etl_text(exc: AisEtlError, what: str) -> str:
    """Put ``etl job NAME`` in front of the reason, as AIS words it, unless it is there already."""
    text = str(exc)
    if "etl job" in text:
        return text
    name = getattr(exc, "etl_name", "") or "?"
    return f"etl job {name} {what}: {text}"


def http_error_of(exc: BaseException) -> AisHttpError:
    """Map a project exception to the status and message AIS gives for the same failure."""
    if isinstance(exc, AisHttpError):
        return exc
    if isinstance(exc, EtlNotFoundError):
        return AisHttpError(NOT_FOUND, _etl_text(exc, "not found"))
    if isinstance(exc, EtlExistsError):
        return AisHttpError(CONFLICT, _etl_text(exc, "already exists"))
    if isinstance(exc, EtlInUseError):
        return AisHttpError(CONFLICT, _etl_text(exc, "is in use"))
    if isinstance(exc, ObjectNotFoundError):
        return AisHttpError(NOT_FOUND, str(exc))
    if isinstance(exc, (ValidationError, StorageError)):
        return AisHttpError(BAD_REQUEST, str(exc))
    if isinstance(exc, (AbortError, AisEtlError)):
        return AisHttpError(FAILED_DEPENDENCY, str(exc))
    return AisHttpError(500, f"internal error: {type(exc).__name__}: {exc}")


def error_body(err: AisHttpError, method: str, path: str) -> bytes:
    """Return the JSON body of an error answer (AIS's ``cmn.ErrHTTP`` fields)."""
    body: dict[str, Any] = {
        "message": err.message,
        "method": method,
        "url_path": path,
        "remote_addr": "",
        "caller": "",
        "node": "ais-etl",
        "status": err.status,
    }
    return json.dumps(body).encode()
