"""Kinds of connection settings: how a raw extra becomes a typed value, and which form widget shows it.

A value reaches the parser from three writers: the Airflow 3 connection form (typed JSON: numbers,
booleans, lists, objects), the legacy form (every value a string) and hand-written JSON or URIs. Each
kind accepts all three. Type mismatches raise :class:`TypeError`, bad values :class:`ValueError`;
both name the extra, say what was expected and show what was given.

The JSON schema of a kind is what Airflow 3's React connection form renders: the first non-null
``type`` picks the widget (text, number, switch, select for ``enum``, one-per-line text area for a
string array, JSON editor for an object).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from airflow_ais_etl.etl.coerce import describe
from airflow_ais_etl.etl.duration import parse_duration
from airflow_ais_etl.etl.errors import EtlError

__all__ = [
    "Checked",
    "Choice",
    "Flag",
    "Integer",
    "Json",
    "Labels",
    "PathList",
    "Seconds",
    "SettingKind",
    "Text",
]

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _type_error(name: str, expected: str, value: Any) -> TypeError:
    return TypeError(f"connection extra {name!r} must be {expected}, got {describe(value)}")


def _value_error(name: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"connection extra {name!r} must be {expected}, got {describe(value)}")


class SettingKind(Protocol):
    """What every kind offers: parsing a set (non-empty) raw value, and its form schema."""

    def parse(self, name: str, raw: Any) -> Any:
        """Return the typed value of extra ``name``; raise TypeError or ValueError."""
        ...

    def json_schema(self) -> dict[str, Any]:
        """Return the JSON schema of the form field (without title, default or section)."""
        ...

    def blank(self) -> Any:
        """Return the form value that means "not set" (what a fresh form shows instead of ``null``)."""
        ...


@dataclass(frozen=True)
class Text:
    """A free string; surrounding blanks are dropped."""

    def blank(self) -> str:
        return ""

    def parse(self, name: str, raw: Any) -> str:
        if not isinstance(raw, str):
            raise _type_error(name, "a string", raw)
        return raw.strip()

    def json_schema(self) -> dict[str, Any]:
        return {"type": ["string", "null"]}


@dataclass(frozen=True)
class Choice:
    """One of a few words (case-insensitive, returned as spelled in ``options``); the form shows a drop-down."""

    options: tuple[str, ...]

    def blank(self) -> str:
        return ""

    def parse(self, name: str, raw: Any) -> str:
        if not isinstance(raw, str):
            raise _type_error(name, f"one of {', '.join(self.options)}", raw)
        word = {o.lower(): o for o in self.options}.get(raw.strip().lower())
        if word is None:
            raise _value_error(name, f"one of {', '.join(self.options)}", raw)
        return word

    def json_schema(self) -> dict[str, Any]:
        return {"type": ["string", "null"], "enum": list(self.options)}


@dataclass(frozen=True)
class Flag:
    """A boolean; the legacy form and URIs send it as ``true``/``false`` text."""

    def blank(self) -> bool:
        return False

    def parse(self, name: str, raw: Any) -> bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in (*_TRUE, *_FALSE):
            return raw.strip().lower() in _TRUE
        if isinstance(raw, str):
            raise _value_error(name, "true or false", raw)
        raise _type_error(name, "true or false", raw)

    def json_schema(self) -> dict[str, Any]:
        return {"type": ["boolean", "null"]}


@dataclass(frozen=True)
class Seconds:
    """A positive duration: seconds as a number, or Go-style text such as ``90s`` or ``2m``."""

    def blank(self) -> None:
        return None

    def parse(self, name: str, raw: Any) -> float:
        expected = "a positive number of seconds or a duration like 90s"
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise _type_error(name, expected, raw)
        try:
            seconds = float(raw.strip()) if isinstance(raw, str) and _is_number(raw) else parse_duration(raw)
        except EtlError:
            raise _value_error(name, expected, raw) from None
        if not (math.isfinite(seconds) and seconds > 0):
            raise _value_error(name, expected, raw)
        return seconds

    def json_schema(self) -> dict[str, Any]:
        return {"type": ["number", "null"], "exclusiveMinimum": 0}


def _is_number(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Integer:
    """A whole number within ``[minimum, maximum]``; decimal text counts."""

    minimum: int
    maximum: int

    def blank(self) -> None:
        return None

    def parse(self, name: str, raw: Any) -> int:
        expected = f"a whole number from {self.minimum} to {self.maximum}"
        if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
            raw = int(raw.strip())
        elif isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int):
            if isinstance(raw, (str, float)):
                raise _value_error(name, expected, raw)
            raise _type_error(name, expected, raw)
        if not self.minimum <= raw <= self.maximum:
            raise _value_error(name, expected, raw)
        return raw

    def json_schema(self) -> dict[str, Any]:
        return {"type": ["integer", "null"], "minimum": self.minimum, "maximum": self.maximum}


@dataclass(frozen=True)
class Labels:
    """Kubernetes labels: an object, its JSON text, or ``key=value,key2=value2``."""

    def blank(self) -> dict[str, str]:
        return {}

    def parse(self, name: str, raw: Any) -> dict[str, str]:
        if isinstance(raw, str):
            raw = self._from_text(name, raw.strip())
        if not isinstance(raw, Mapping):
            raise _type_error(name, 'an object of label values ({"key": "value"})', raw)
        out = {}
        for key, value in raw.items():
            if not isinstance(key, str) or not key.strip():
                raise _value_error(name, "an object whose keys are label names", raw)
            if value is None or isinstance(value, (Mapping, list, tuple)):
                raise _type_error(f"{name}[{key!r}]", "a label value (text)", value)
            out[key.strip()] = str(value).strip()
        return out

    @staticmethod
    def _from_text(name: str, text: str) -> Any:
        if text.startswith("{"):
            try:
                return json.loads(text)
            except ValueError as exc:
                raise ValueError(f"connection extra {name!r} is not valid JSON: {exc}") from None
        out = {}
        for pair in (p.strip() for p in text.split(",")):
            key, sep, value = pair.partition("=")
            if not pair:
                continue
            if not sep or not key.strip():
                raise _value_error(name, "key=value pairs separated by commas", pair)
            out[key.strip()] = value.strip()
        return out

    def json_schema(self) -> dict[str, Any]:
        return {"type": ["object", "null"], "additionalProperties": {"type": "string"}}


@dataclass(frozen=True)
class PathList:
    """Paths (or other names, per ``item``): a list, or text with one per line or separated by commas."""

    item: str = "path"

    def blank(self) -> list[str]:
        return []

    def parse(self, name: str, raw: Any) -> tuple[str, ...]:
        if isinstance(raw, str):
            raw = raw.replace("\n", ",").split(",")
        if not isinstance(raw, (list, tuple)):
            raise _type_error(name, f"a list of {self.item}s", raw)
        for item in raw:
            if not isinstance(item, str):
                raise _type_error(f"{name} item", f"a {self.item} (text)", item)
        return tuple(p.strip() for p in raw if p.strip())

    def json_schema(self) -> dict[str, Any]:
        return {"type": ["array", "null"], "items": {"type": "string"}}


def _checked(name: str, check: Callable[[Any], Any], value: Any) -> Any:
    """Run a kind's extra ``check``; its ValueError becomes one naming the extra."""
    try:
        return check(value)
    except ValueError as exc:
        raise ValueError(f"connection extra {name!r}: {exc}") from None


@dataclass(frozen=True)
class Checked:
    """Another kind whose parsed value must also pass ``check`` (which may normalise it)."""

    kind: SettingKind
    check: Callable[[Any], Any]

    def blank(self) -> Any:
        return self.kind.blank()

    def parse(self, name: str, raw: Any) -> Any:
        return _checked(name, self.check, self.kind.parse(name, raw))

    def json_schema(self) -> dict[str, Any]:
        return self.kind.json_schema()


@dataclass(frozen=True)
class Json:
    """A JSON object or array (``shape``), or its JSON text, that must pass ``check``; a JSON editor."""

    shape: str
    check: Callable[[Any], Any]

    def blank(self) -> Any:
        return {} if self.shape == "object" else []

    def parse(self, name: str, raw: Any) -> Any:
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise ValueError(f"connection extra {name!r} is not valid JSON: {exc}") from None
        expected = (Mapping,) if self.shape == "object" else (list, tuple)
        if not isinstance(raw, expected):
            raise _type_error(name, f"a JSON {self.shape}", raw)
        return _checked(name, self.check, raw)

    def json_schema(self) -> dict[str, Any]:
        if self.shape == "array":
            return {"type": ["array", "null"], "items": {"type": "object"}}
        return {"type": ["object", "null"]}
