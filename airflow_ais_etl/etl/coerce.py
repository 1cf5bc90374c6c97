"""Turn loose values (rendered templates, CLI flags, JSON) into typed ones, or say what is wrong.

Airflow renders templated fields to strings, so ``"3"``, ``"True"`` and ``'{"A": "1"}'`` must be
accepted where an int, a bool or a mapping is meant. Every refusal is a :class:`ValidationError`
naming the field, the expected type and what was given.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_ais_etl.etl.errors import ValidationError

__all__ = ["as_bool", "as_float", "as_int", "as_str", "as_str_list", "as_str_map", "describe"]

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no", "")


def describe(value: Any) -> str:
    """Say what a value is, for error messages: ``list [1, 2]``, ``str 'x'``."""
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 80 else text[:77] + '...'}"


def _wrong(name: str, expected: str, value: Any) -> ValidationError:
    return ValidationError(f"{name} must be {expected}, got {describe(value)}")


def as_str(name: str, value: Any) -> str:
    """Return ``value`` if it is a string."""
    if not isinstance(value, str):
        raise _wrong(name, "a string", value)
    return value


def as_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int; decimal strings count (templates render numbers as text)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(name, "an integer", value)
    if minimum is not None and value < minimum:
        raise ValidationError(f"{name} must be >= {minimum}, got {value}")
    return value


def as_float(name: str, value: Any, *, positive: bool = True) -> float:
    """Return ``value`` as a number of seconds; numeric strings count."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise _wrong(name, "a number of seconds", value) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong(name, "a number of seconds", value)
    if positive and not value > 0:
        raise ValidationError(f"{name} must be positive, got {value}")
    return float(value)


def as_bool(name: str, value: Any) -> bool:
    """Return ``value`` as a bool, accepting what a template renders (``True``, ``false``, ``1``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in (*_TRUE, *_FALSE):
        return value.strip().lower() in _TRUE
    raise _wrong(name, "a bool (or true/false)", value)


def as_str_map(name: str, value: Any) -> dict[str, str]:
    """Return a ``{str: str}`` dict from a mapping or its JSON text; scalar values become strings."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError:
            raise _wrong(name, "a mapping or its JSON text", value) from None
    if not isinstance(value, Mapping):
        raise _wrong(name, "a mapping of strings", value)
    out = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ValidationError(f"{name} keys must be non-empty strings, got {describe(key)}")
        if item is None or isinstance(item, (Mapping, list, tuple, set)):
            raise _wrong(f"{name}[{key!r}]", "a string", item)
        out[key] = str(item)
    return out


def as_str_list(name: str, value: Any) -> list[str]:
    """Return a list of strings from a list or tuple of strings (a lone string is refused)."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _wrong(name, "a list of strings", value)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise _wrong(f"{name}[{index}]", "a string", item)
    return list(value)
