"""What AIStore 2.x adds to a request (docs/protocol.md): ``etl_fqn``, ``etl_args``, direct put.

Both protocol generations reach the same handlers: with ``ARG_TYPE=fqn`` the file name comes from
query ``etl_fqn`` when present (2025) and from the request path otherwise (December 2024).
``transform`` gets ``(data, path, etl_args)`` when it accepts three arguments, AIS's
``ETLServer.transform`` convention, and ``(data)`` otherwise.
"""

from __future__ import annotations

import functools
import http.client
import inspect
import os
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from airflow_ais_etl.etl.constants import HDR_DIRECT_PUT_LENGTH, HDR_NODE_URL, QPARAM_ETL_ARGS, QPARAM_ETL_FQN
from airflow_ais_etl.runtime.connpool import exchange, host_key, shared_pool

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DirectPutError",
    "accepts_context",
    "compose_direct_put_url",
    "delivered_length",
    "direct_put",
    "etl_args_of",
    "fqn_of_query",
    "node_url_of",
    "object_path",
    "open_put",
    "unquote_path",
]

DIRECT_PUT_TIMEOUT = 600.0
_ERROR_TEXT_LIMIT = 4096


class DirectPutError(Exception):
    """Delivering the result to the target failed: ``status`` is its answer, or 502 without one."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _param(query: str, key: str) -> str | None:
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == key:
            return value
    return None


def fqn_of_query(query: str) -> str | None:
    """Return the local file named by query ``etl_fqn`` (AIS sends ``url.PathEscape`` of it), or None."""
    value = _param(query, QPARAM_ETL_FQN)
    if value is None or not value.strip():
        return None
    return os.path.normpath(os.path.join("/", unquote(value.strip()).lstrip("/")))


@functools.lru_cache(maxsize=64)
def etl_args_of(query: str) -> str:
    """Return the per-request arguments (query ``etl_args``, trimmed as AIS's servers do).

    Remembered per query: a job's objects all carry the same one, and parsing it cost a small
    object's transform call more than a microsecond.
    """
    return (_param(query, QPARAM_ETL_ARGS) or "").strip()


def object_path(path: str) -> str:
    """Return the ``path`` argument of ``transform``: the decoded request path without its leading ``/``."""
    return unquote_path(path).lstrip("/")


def unquote_path(path: str) -> str:
    """``unquote(path)``, with what comes before the last ``%2F`` decoded once for all the objects after it.

    A callback path is one escaped uname (``/ais%2F@%23%2F<bucket>%2F<object>``): ``unquote`` takes
    2 us on it, twice an object of a pull batch. An escape never spans ``%2F`` and ``/`` ends any
    UTF-8 sequence, so the two parts decode as the whole does.
    """
    head, sep, tail = path.rpartition("%2F")
    if not sep:
        return unquote(path)
    return _unquoted_head(head) + "/" + unquote(tail)


@functools.lru_cache(maxsize=1024)
def _unquoted_head(head: str) -> str:
    return unquote(head)


def accepts_context(func: Callable[..., object], nargs: int) -> bool:
    """Tell whether ``func`` takes ``nargs`` positional arguments plus ``path`` and ``etl_args``."""
    try:
        inspect.signature(func).bind(*range(nargs + 2))
    except (TypeError, ValueError):
        return False
    return True


def node_url_of(headers: dict[str, str]) -> tuple[str, str]:
    """Return the first direct-put URL of header ``Ais-Node-Url`` and the rest of the pipeline."""
    value = headers.get(HDR_NODE_URL.lower(), "").strip()
    first, _, rest = value.partition(",")
    return first.strip(), rest.strip()


def compose_direct_put_url(node_url: str, target_url: str, obj_path: str, etl_args: str) -> str:
    """Build where to PUT the result, as AIS's servers do (``compose_etl_direct_put_url``).

    A node URL with a path names the destination object: the target URL's path (which carries its
    secret) is put in front of it. Without a path it is the next ETL of a pipeline: the object's
    path is appended. ``etl_args`` replace any in the node URL's query.
    """
    direct = urlsplit(node_url)
    host = urlsplit(target_url)
    path = host.path.rstrip("/") + direct.path if direct.path else "/" + quote(obj_path, safe="/@")
    query = direct.query
    if etl_args:
        pairs = [(k, v) for k, v in parse_qsl(direct.query, keep_blank_values=True) if k != QPARAM_ETL_ARGS]
        query = urlencode([*pairs, (QPARAM_ETL_ARGS, etl_args)])
    return urlunsplit((host.scheme or "http", direct.netloc, path, query, ""))


def direct_put(url: str, data: bytes, rest: str = "", timeout: float = DIRECT_PUT_TIMEOUT) -> int:
    """PUT ``data`` to ``url`` on a kept-alive connection; return how many bytes were delivered.

    A reused connection that fails before any of the answer arrived is retried once on a new one:
    the whole body is at hand, and a PUT of it twice stores the same object.

    :raises DirectPutError: the receiver answered other than 200/204, or could not be reached
    """
    pool = shared_pool(timeout)
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
    if rest:
        headers[HDR_NODE_URL] = rest
    key = host_key(url)
    try:
        conn, resp = exchange(pool, key, "PUT", _request_target(url), data, headers)
    except (OSError, http.client.HTTPException) as exc:
        raise DirectPutError(502, f"direct put to {urlsplit(url).netloc} failed: {exc}") from exc
    try:
        return _answered_length(resp, f"{conn.host}:{conn.port}", len(data))
    except (OSError, http.client.HTTPException) as exc:
        resp.close()
        raise DirectPutError(502, f"direct put to {urlsplit(url).netloc} failed: {exc}") from exc
    finally:
        pool.give_back(key, conn, resp)


def _request_target(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def open_put(url: str, timeout: float = DIRECT_PUT_TIMEOUT) -> tuple[http.client.HTTPConnection, str]:
    """Return a new (unconnected) connection to the host of ``url`` and the request target to PUT.

    For a streamed (chunked) PUT, which cannot be sent again: it never goes on a reused connection.
    """
    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return cls(parts.hostname or "", parts.port, timeout=timeout), _request_target(url)


def delivered_length(conn: http.client.HTTPConnection, sent: int) -> int:
    """Read the receiver's answer to a direct put of ``sent`` bytes; return the length it stored.

    :raises DirectPutError: it answered other than 204 (with the length) or an empty 200
    """
    return _answered_length(conn.getresponse(), f"{conn.host}:{conn.port}", sent)


def _answered_length(resp: http.client.HTTPResponse, where: str, sent: int) -> int:
    body = resp.read(_ERROR_TEXT_LIMIT)
    if resp.status == 204:
        return int(resp.getheader(HDR_DIRECT_PUT_LENGTH) or sent)
    if resp.status == 200 and not body:
        return sent
    text = body.decode("utf-8", "replace").strip()
    raise DirectPutError(
        resp.status if resp.status >= 400 else 502,
        f"direct put to {where} answered {resp.status} {resp.reason}: {text}",
    )
