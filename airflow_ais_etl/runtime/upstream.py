"""Fetch objects from the target's callback endpoint (``AIS_TARGET_URL``) for hpull and hrev.

GETs go on keep-alive connections shared by the process's threads (:mod:`.connpool`), so a stream
of GETs costs no TCP handshakes, though the pod serves each in a new thread. A non-2xx answer is
an error, never data to transform.
"""

from __future__ import annotations

import http.client
import threading
from urllib.parse import quote, unquote, urlsplit

from airflow_ais_etl.runtime.connpool import exchange, host_key, shared_pool

CALLBACK_TIMEOUT = 600.0
_ERROR_TEXT_LIMIT = 4096
# Characters a request target may carry as they are; everything else is percent-encoded.
_SAFE_TARGET_CHARS = "!$&'()*+,-./:;=@_~%"


def shown_url(url: str) -> str:
    """Return ``url`` fit for messages: its last path segment (the gateway's secret) masked."""
    parts = urlsplit(url)
    head, _, last = parts.path.rstrip("/").rpartition("/")
    return f"{parts.scheme}://{parts.netloc}{head}/***" if last else f"{parts.scheme}://{parts.netloc}"


class CallbackError(Exception):
    """The callback failed: ``status`` is the target's answer, or 502 when there was none."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def strip_etl_name(query: str) -> str:
    """Drop ``etl_name`` parameters from a raw query string, keeping the rest byte for byte."""
    if not query:
        return ""
    kept = [item for item in query.split("&") if item and unquote(item.partition("=")[0]) != "etl_name"]
    return "&".join(kept)


def requote_path(path: str) -> str:
    """Return ``path`` (decoded from the request line as latin-1) safe for a request line.

    Percent-escapes stay as received; only characters a request line cannot carry (space,
    controls, non-ASCII bytes) are encoded, so the target still sees the client's escaping.
    """
    if path.isascii() and path.isprintable() and " " not in path:
        return path
    return quote(path.encode("latin-1", "replace"), safe=_SAFE_TARGET_CHARS)


class CallbackClient:
    """GETs ``AIS_TARGET_URL + <escaped path>`` on the process's keep-alive connections."""

    def __init__(self, base_url: str, timeout: float = CALLBACK_TIMEOUT) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"callback URL {base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self._key = host_key(base_url)
        self._base_path = parts.path.rstrip("/")
        self._pool = shared_pool(timeout)
        self._local = threading.local()
        """The connection of the response this thread has open."""

    def url_for(self, path: str, query: str) -> str:
        """Return the full callback URL for a request path (what ``ARG_TYPE=url`` hands to the user)."""
        query = strip_etl_name(query)
        return self.base_url + requote_path(path) + ("?" + query if query else "")

    def item_path(self, path: str, query: str) -> str:
        """Return what follows the base URL for a request path, without its ``/`` (a batch item's path)."""
        query = strip_etl_name(query)
        return requote_path(path).lstrip("/") + ("?" + query if query else "")

    def _target(self, path: str, query: str) -> str:
        query = strip_etl_name(query)
        return self._base_path + requote_path(path) + ("?" + query if query else "")

    def open(self, path: str, query: str) -> http.client.HTTPResponse:
        """Send the GET and return the response, positioned at the start of a 2xx body.

        Give it back with :meth:`release` (in the same thread) once it is read.

        :raises CallbackError: the target answered non-2xx (its status and text) or could not be reached.
        """
        target = self._target(path, query)
        try:
            conn, resp = exchange(self._pool, self._key, "GET", target, None, {})
        except (OSError, http.client.HTTPException) as exc:
            where = shown_url(self.base_url)  # never the secret: the message reaches the engine's logs
            raise CallbackError(502, f"callback GET {where}/... failed: {exc}") from exc
        if 200 <= resp.status < 300:
            self._local.conn = conn
            return resp
        try:
            text = resp.read(_ERROR_TEXT_LIMIT).decode("utf-8", "replace").strip()
        except (OSError, http.client.HTTPException):
            text = ""
        self._pool.give_back(self._key, conn, resp)
        raise CallbackError(resp.status, f"callback answered {resp.status} {resp.reason}: {text}")

    def release(self, resp: http.client.HTTPResponse) -> None:
        """Give the connection back for reuse if the body was read to the end; otherwise close it."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is None:
            resp.close()
            return
        self._pool.give_back(self._key, conn, resp)
