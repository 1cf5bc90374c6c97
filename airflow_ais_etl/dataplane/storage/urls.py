"""Name buckets: one spelling per bucket URL, and a short stable id derived from it.

Pure string work (no bucket is opened), so the target gateway can name buckets cheaply.
"""

from __future__ import annotations

import hashlib
import os
from urllib.parse import unquote, urlsplit

from airflow_ais_etl.etl.errors import StorageError

__all__ = ["bucket_id", "local_dir", "normalize_url"]


def local_dir(url_or_path: str) -> str | None:
    """Return the directory of a plain path or ``file://`` URL, ``None`` for other schemes."""
    if "://" not in url_or_path:
        return url_or_path
    parts = urlsplit(url_or_path)
    if parts.scheme.lower() != "file":
        return None
    if parts.netloc not in ("", "localhost"):
        raise StorageError(f"file URL {url_or_path!r} names a remote host {parts.netloc!r}; use file:///path")
    return unquote(parts.path) or "/"


def normalize_url(url_or_path: str) -> str:
    """Return one spelling per bucket: ``file:///abs/dir`` for local ones, no trailing slash otherwise."""
    local = local_dir(url_or_path)
    if local is not None:
        return "file://" + os.path.abspath(os.path.expanduser(local))
    scheme, _, rest = url_or_path.partition("://")
    return scheme.lower() + "://" + rest.rstrip("/")


def bucket_id(url: str) -> str:
    """Return a stable short name for the bucket at ``url`` (``b-`` + 16 hex digits)."""
    digest = hashlib.sha1(normalize_url(url).encode(), usedforsecurity=False).hexdigest()
    return "b-" + digest[:16]
