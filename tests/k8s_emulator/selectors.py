"""Parse and match Kubernetes label and field selectors (pure functions).

Label selectors support ``=``, ``==``, ``!=``, ``in``, ``notin``, ``exists`` (bare key),
``!key``, ``>`` and ``<``; field selectors support ``=``, ``==`` and ``!=`` on dotted paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\((.*)\)\s*$")
_OP_RE = re.compile(rf"^\s*({_KEY})\s*(==|!=|=|>|<)\s*(.*?)\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


class SelectorError(ValueError):
    """Reject a selector the API server could not parse."""


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", ">", "<"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Tell whether ``labels`` satisfy this term."""
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if not present:
            return False
        try:
            number = int(str(value))
        except ValueError:
            return False
        limit = int(self.values[0])
        return number > limit if self.op == ">" else number < limit


def _split_terms(text: str) -> list[str]:
    """Split at commas that are not inside parentheses."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    terms.append("".join(current))
    return [t for t in terms if t.strip()]


def parse_label_selector(text: str | None) -> list[Requirement]:
    """Parse a label selector string; an empty one matches everything."""
    if not text or not text.strip():
        return []
    out = []
    for term in _split_terms(text):
        if m := _SET_RE.match(term):
            values = tuple(v.strip() for v in m.group(4).split(",") if v.strip())
            out.append(Requirement(m.group(1), m.group(3), values))
        elif m := _OP_RE.match(term):
            op = "=" if m.group(3) == "==" else m.group(3)
            value = m.group(4)
            if op in (">", "<") and not re.fullmatch(r"-?\d+", value):
                raise SelectorError(
                    f"unable to parse requirement: for 'gt', 'lt' operators, the value must be an integer: {term.strip()!r}"
                )
            out.append(Requirement(m.group(1), op, (value,)))
        elif m := _EXISTS_RE.match(term):
            out.append(Requirement(m.group(2), "!" if m.group(1) else "exists"))
        else:
            raise SelectorError(
                f"unable to parse requirement: found {term.strip()!r}, expected a valid selector term"
            )
    return out


def match_labels(requirements: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    """Tell whether ``labels`` satisfy every requirement."""
    labels = labels or {}
    return all(r.matches(labels) for r in requirements)


@dataclass(frozen=True)
class FieldTerm:
    """One term of a field selector."""

    path: str
    negate: bool
    value: str


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse_field_selector(text: str | None) -> list[FieldTerm]:
    """Parse a field selector string (``metadata.name=x,status.phase!=Running``)."""
    if not text or not text.strip():
        return []
    out = []
    for raw in re.split(r"(?<!\\),", text):
        if not raw.strip():
            continue
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|=)(.*)$", raw)
        if not m:
            raise SelectorError(f"invalid selector: {raw!r}; can't understand {raw!r}")
        out.append(FieldTerm(m.group(1), m.group(2) == "!=", _unescape(m.group(3).strip())))
    return out


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """Return the string value at a dotted path ('' when absent), as field selectors compare it."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def match_fields(terms: list[FieldTerm], obj: Mapping[str, Any]) -> bool:
    """Tell whether ``obj`` satisfies every field selector term."""
    return all((field_value(obj, t.path) == t.value) != t.negate for t in terms)
