"""Offline naming and selection: destination names, range templates, prefixes and URL escaping."""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow_ais_etl.etl.errors import ValidationError, go_quote

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "MAX_TEMPLATE_NAMES",
    "callback_path",
    "dest_name",
    "expand_template",
    "fqn_path",
    "hpush_path",
    "parse_ext",
    "path_escape",
    "uname",
    "validate_object_name",
    "validate_prefix",
]

MAX_TEMPLATE_NAMES = 10_000_000
"""Refuse templates that expand to more names than this (they would exhaust memory)."""

_BASH_HINT = "expecting e.g. 'prefix-{0001..0010..1}-suffix'"
_RANGE_BODY = re.compile(r"(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?")
_FMT = re.compile(r"%0?\d*d")
_EXT_HINT = 'use JSON like {"jpg": "txt"} or the short form {jpg:txt, in2:out2}'


def dest_name(src: str, ext: Mapping[str, str] | None, prepend: str) -> str:
    """Name the destination of ``src`` as the reference does (§6.4): map the extension, then prepend.

    The extension is everything after the LAST ``.`` of the whole name (directories included) and
    must match a key exactly; the mapped value loses its leading dots.

    :param src: source object name
    :param ext: extension map such as ``{"jpg": "txt"}``, or None
    :param prepend: prefix for every destination name
    :return: the destination object name
    """
    name = src
    if ext is not None:
        dot = name.rfind(".")
        if dot >= 0:
            suffix = name[dot + 1 :]
            if suffix in ext:
                name = name[: dot + 1] + ext[suffix].lstrip(".")
    return prepend + name


def _unquote_token(token: str) -> str:
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "\"'":
        token = token[1:-1]
    return token


def parse_ext(text: str) -> dict[str, str]:
    """Parse an extension map: JSON, or the relaxed ``{jpg:txt, in2:out2}`` form.

    :param text: the map as a user typed it
    :return: source extension → destination extension
    :raises ValidationError: on anything else
    """
    stripped = text.strip()
    if not stripped:
        raise ValidationError(f"empty extension map: {_EXT_HINT}")
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        data = None
    if data is not None:
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise ValidationError(f"invalid extension map {go_quote(text)}: {_EXT_HINT}")
        return data
    body = stripped
    if body.startswith("{") != body.endswith("}"):
        raise ValidationError(f"invalid extension map {go_quote(text)} (unbalanced braces): {_EXT_HINT}")
    if body.startswith("{"):
        body = body[1:-1]
    out: dict[str, str] = {}
    for item in body.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition(":")
        key, value = _unquote_token(key), _unquote_token(value)
        if not sep or not key or not value:
            raise ValidationError(
                f"invalid extension map {go_quote(text)} at {go_quote(item.strip())}: {_EXT_HINT}"
            )
        out[key] = value
    return out


def _bash_error(template: str, why: str) -> ValidationError:
    return ValidationError(f"invalid 'bash' template {go_quote(template)}: {why} ({_BASH_HINT})")


def _check_count(template: str, count: int) -> None:
    if count > MAX_TEMPLATE_NAMES:
        raise ValidationError(
            f"template {go_quote(template)} expands to {count} names, more than the limit of "
            f"{MAX_TEMPLATE_NAMES}; split it into several smaller ranges or use a prefix"
        )


def _expand_bash(template: str) -> list[str]:
    literals: list[str] = []
    ranges: list[tuple[range, int]] = []
    rest = template
    while True:
        opening, closing = rest.find("{"), rest.find("}")
        if opening < 0 and closing < 0:
            literals.append(rest)
            break
        if opening < 0 or (0 <= closing < opening):
            raise _bash_error(template, "unmatched '}'")
        closing = rest.find("}", opening)
        if closing < 0:
            raise _bash_error(template, "unmatched '{'")
        body = rest[opening + 1 : closing]
        match = _RANGE_BODY.fullmatch(body)
        if match is None:
            raise _bash_error(template, f"malformed range {go_quote('{' + body + '}')}")
        start_text, end_text, step_text = match.groups()
        if start_text.startswith("-") or end_text.startswith("-"):
            raise _bash_error(template, "negative range bounds are not supported")
        start, end = int(start_text), int(end_text)
        step = int(step_text) if step_text is not None else 1
        if start > end:
            raise _bash_error(template, f"start ({start}) > end ({end})")
        if step <= 0:
            raise _bash_error(template, f"step must be positive, got {step}")
        width = min(len(start_text), len(end_text))
        literals.append(rest[:opening])
        ranges.append((range(start, end + 1, step), width))
        rest = rest[closing + 1 :]
    _check_count(template, math.prod(len(r) for r, _ in ranges))
    names = []
    for combo in itertools.product(*(r for r, _ in ranges)):
        parts = [literals[0]]
        for (number, (_, width)), literal in zip(zip(combo, ranges), literals[1:]):
            parts.append(f"{number:0{width}d}")
            parts.append(literal)
        names.append("".join(parts))
    return names


def _expand_at(template: str) -> list[str] | None:
    at = template.rfind("@")
    if at < 0:
        return None
    match = re.match(r"\d+", template[at + 1 :])
    if match is None:
        return None
    digits = match.group()
    end, width = int(digits), len(digits)
    prefix, suffix = template[:at], template[at + 1 + len(digits) :]
    _check_count(template, end + 1)
    return [f"{prefix}{n:0{width}d}{suffix}" for n in range(end + 1)]


def expand_template(template: str) -> list[str] | None:
    """Expand a range template, or return None when it has no range (the caller uses it as a prefix).

    Forms (reference §6.3): bash ``prefix-{0001..0010[..step]}-suffix`` (several ranges, the last
    varies fastest, zero padding = min width of the start/end texts) and ``prefix@NNN`` (0..NNN,
    width ``len(NNN)``).

    :param template: e.g. ``shard-{0000..0999}.tar`` or ``shard-@099.tar``
    :return: the names in order, or None for a plain prefix
    :raises ValidationError: malformed braces, start > end, step <= 0, negative bounds, ``%0Nd``
        (unbounded) templates, or more than :data:`MAX_TEMPLATE_NAMES` names
    """
    if ("{" in template or "}" in template) and ".." in template:
        return _expand_bash(template)
    names = _expand_at(template)
    if names is not None:
        return names
    if _FMT.search(template):
        raise ValidationError(
            f"template {go_quote(template)} uses an unbounded %0Nd range, which cannot select objects; "
            f"use a bash range instead ({_BASH_HINT})"
        )
    return None


def validate_prefix(prefix: str) -> str:
    """Check a listing prefix: strip one trailing ``*``; refuse ``../`` and ``~/``.

    :return: the prefix without the trailing ``*``
    """
    if prefix.endswith("*"):
        prefix = prefix[:-1]
    if "../" in prefix or "~/" in prefix:
        raise ValidationError(
            f"bad list-range request: invalid prefix {go_quote(prefix)} "
            '(a prefix must not contain "../" or "~/")'
        )
    return prefix


def validate_object_name(name: str) -> str:
    """Check that an object name stays inside its bucket when used as a relative path.

    :return: the name, unchanged
    :raises ValidationError: empty, NUL byte, absolute, or with empty, ``.`` or ``..`` segments
    """
    if not isinstance(name, str) or not name:
        raise ValidationError("object name is empty")
    quoted = go_quote(name)
    if "\x00" in name:
        raise ValidationError(f"object name {quoted} contains a NUL byte")
    if name.startswith("/"):
        raise ValidationError(f"object name {quoted} is absolute: object names are relative to the bucket")
    for segment in name.split("/"):
        if segment == "":
            raise ValidationError(f"object name {quoted} has an empty path segment ('//' or a trailing '/')")
        if segment in (".", ".."):
            raise ValidationError(
                f"object name {quoted} has a {go_quote(segment)} segment, which could leave the bucket"
            )
    return name


_PATH_SAFE = "$&+:=@"


def path_escape(text: str) -> str:
    """Escape like Go's ``url.PathEscape`` (keeps ``A-Za-z0-9-_.~$&+:=@``).

    What comes before the last ``/`` is escaped once per directory: ``quote`` goes byte by byte
    through any text with something to escape, and every uname has its ``/`` and ``#`` (2 us an
    object, in the engine's loop); a plain object name on its own takes ``quote``'s fast path.
    """
    head, sep, tail = text.rpartition("/")
    if not sep:
        return quote(text, safe=_PATH_SAFE)
    return _escaped_directory(head) + quote(tail, safe=_PATH_SAFE)


@functools.lru_cache(maxsize=1024)
def _escaped_directory(head: str) -> str:
    return quote(head + "/", safe=_PATH_SAFE)


def uname(provider: str, bucket: str, obj: str) -> str:
    """Return the reference's unique object name in the global namespace: ``<provider>/@#/<bucket>/<obj>``."""
    return f"{provider}/@#/{bucket}/{obj}"


def callback_path(unique_name: str) -> str:
    """Return the hpull/hrev request path for an object: ``/`` + the escaped uname (one segment)."""
    return "/" + path_escape(unique_name)


def hpush_path(bucket: str, obj: str) -> str:
    """Return the hpush/io request path ``/<bucket>/<object>``, escaping each segment.

    The reference sends the names raw (so ``?``, ``#`` and ``%`` break the URL); we escape them and
    keep the bucket-then-object order.
    """
    return "/" + quote(bucket, safe="") + "/" + quote(obj, safe="/")


def fqn_path(fqn: str) -> str:
    """Return the request path for arg type ``fqn``: ``/`` + the escaped file name (one segment)."""
    return "/" + path_escape(fqn)
