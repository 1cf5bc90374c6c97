"""How the target gateway reads a callback path: the object's uname, its bucket's directory, refusals.

Standard library only, like the gateway.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, unquote_to_bytes, urlsplit

__all__ = ["Refusal", "decode_uname", "local_root", "query_of", "split_uname"]


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
    framed = f"/{obj}/"  # an empty, '.' or '..' segment shows as '//', '/./' or '/../' (no loop per segment)
    if "\x00" in obj or "//" in framed or "/./" in framed or "/../" in framed:
        raise Refusal(400, f"invalid object name {obj!r}: no empty, '.' or '..' segments, not absolute")
    return bucket, obj


def decode_uname(rest: str) -> str:
    """Percent-decode the uname of a callback path (UTF-8) as ``unquote_to_bytes`` would.

    The usual uname is plain ASCII but for its escaped ``/``, the namespace's ``#`` and, in a direct
    put's, ``@``: those are replaced directly (an escape's ``%`` is never produced by a replacement,
    so once no ``%`` is left each one was an escape). Raises ``UnicodeDecodeError`` for bytes that
    are no UTF-8 once decoded.
    """
    if rest.isascii():
        plain = rest.replace("%2F", "/").replace("%23", "#").replace("%40", "@")
        if "%" not in plain:
            return plain
    return unquote_to_bytes(rest).decode("utf-8")


def query_of(path: str) -> str:
    """The query of a request path or batch item path, as ``urlsplit(path).query`` gives it.

    A plain path (no scheme, no host, no fragment, nothing ``urlsplit`` strips) is split here.
    """
    before, _, query = path.partition("?")
    if ":" not in before and "#" not in path and not path.startswith(("//", " ")) and path.isprintable():
        return query
    return urlsplit(path).query


def local_root(url: str) -> str | None:
    """Return the directory of a local bucket URL, ``None`` for object-store URLs."""
    if "://" not in url:
        return os.path.abspath(url)
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        return None
    return os.path.abspath(unquote(parts.path) or "/")
