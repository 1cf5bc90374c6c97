"""Refuse offline jobs whose destination lies inside their source (or the other way round).

Such a job feeds itself: a re-run (or the listing of a later job) picks up its own results and
journal notes as sources and writes ``out/out/...``. Locations are compared after resolving
symbolic links (local directories) and path segment by segment (``s3://b/out`` is inside
``s3://b`` but ``s3://b/output`` is not inside ``s3://b/out``).
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from airflow_ais_etl.dataplane.storage.urls import local_dir
from airflow_ais_etl.etl.errors import ValidationError

__all__ = ["check_separate", "location"]


def location(url: str) -> tuple[str, tuple[str, ...]]:
    """Return ``(scheme://host, path segments)`` of a bucket URL or local path, symlinks resolved."""
    local = local_dir(url)
    if local is not None:
        real = os.path.realpath(os.path.expanduser(local))
        return "file://", tuple(p for p in real.split("/") if p)
    parts = urlsplit(url)
    segments = tuple(unquote(p) for p in parts.path.split("/") if p not in ("", "."))
    return f"{parts.scheme.lower()}://{parts.netloc}", segments


def check_separate(src: str, dst: str, *, same_connection: bool = True) -> None:
    """Raise :class:`ValidationError` when ``dst`` is ``src``, lies inside it, or contains it.

    :param same_connection: False when the two use different connections (then the same URL may
        name different stores, and nothing is refused)
    """
    if not same_connection:
        return
    (src_root, src_path), (dst_root, dst_path) = location(src), location(dst)
    if src_root != dst_root:
        return
    shorter = min(len(src_path), len(dst_path))
    if src_path[:shorter] != dst_path[:shorter]:
        return
    if src_path == dst_path:
        why = "are the same location"
    elif len(dst_path) > len(src_path):
        why = "overlap: the destination is inside the source"
    else:
        why = "overlap: the source is inside the destination"
    raise ValidationError(
        f"source {src} and destination {dst} {why}, so a job (or its re-run) would transform its own "
        "results and journal; choose a destination outside the source"
    )
