"""How the target gateway reads a callback path: the object's uname, its bucket's directory, refusals.

Standard library only, like the gateway.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

__all__ = ["Refusal", "local_root", "split_uname"]


class Refusal(Exception):
    """An answer other than the object: status and a short text."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def split_uname(uname: str) -> tuple[str, str]:
    """Split ``<provider>/<ns>/<bucket>/<object>`` into bucket and object; refuse unsafe names."""
    parts = uname.split("/", 3)
    if len(parts) < 3 or not parts[0] or not parts[1].startswith("@") or "#" not in parts[1]:
        raise Refusal(400, f"invalid object uname {uname!r}: expecting <provider>/@#/<bucket>/<object>")
    bucket = parts[2]
    obj = parts[3] if len(parts) == 4 else ""
    if not bucket or bucket in (".", "..") or "\x00" in bucket:
        raise Refusal(400, f"invalid bucket name in uname {uname!r}")
    if not obj:
        raise Refusal(400, f'object name is missing (bucket={bucket}, uname="{uname}")')
    if "\x00" in obj or obj.startswith("/") or any(seg in ("", ".", "..") for seg in obj.split("/")):
        raise Refusal(400, f"invalid object name {obj!r}: no empty, '.' or '..' segments, not absolute")
    return bucket, obj


def local_root(url: str) -> str | None:
    """Return the directory of a local bucket URL, ``None`` for object-store URLs."""
    if "://" not in url:
        return os.path.abspath(url)
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        return None
    return os.path.abspath(unquote(parts.path) or "/")
