"""Go-style durations: the wire format of ``timeout`` and the pod-ready polling interval."""

from __future__ import annotations

import math
import re
from decimal import Decimal

from airflow_ais_etl.etl.errors import ValidationError, go_quote

__all__ = ["format_duration", "parse_duration", "probing_interval"]

_NS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign, as Go writes it
    "\u03bcs": 1_000,  # Greek mu, also accepted by Go
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_MAX_NS = (1 << 63) - 1
_COMPONENT = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_HINT = "use e.g. 45s, 5m, 1h30m"


def _invalid(text: str, why: str = "") -> ValidationError:
    detail = f" ({why})" if why else ""
    return ValidationError(f"time: invalid duration {go_quote(text)}{detail}: {_HINT}")


def parse_duration(value: str | int | float) -> float:
    """Parse a Go duration (``45s``, ``1.5h``, ``1h30m``, ``300ms``) into seconds.

    Numbers are taken as seconds (an API convenience; on the wire ``timeout`` is always a string).

    :param value: a Go duration string, or seconds as a number
    :return: seconds
    :raises ValidationError: for empty or malformed strings, booleans, NaN and infinities
    """
    if isinstance(value, bool):
        raise ValidationError(f"invalid duration {value!r}: {_HINT}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValidationError(f"invalid duration {value!r}: {_HINT}")
        return float(value)
    if not isinstance(value, str):
        raise ValidationError(f"invalid duration of type {type(value).__name__}: {_HINT}")
    text = value
    body = text
    sign = 1
    if body and body[0] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise _invalid(text)
    total = Decimal(0)
    pos = 0
    while pos < len(body):
        match = _COMPONENT.match(body, pos)
        if match is None:
            unit_missing = re.match(r"[\d.]+$", body[pos:]) is not None
            raise _invalid(text, "missing unit" if unit_missing else "")
        total += Decimal(match.group(1)) * _NS[match.group(2)]
        pos = match.end()
    if total > _MAX_NS:
        raise _invalid(text, "overflow")
    return sign * float(total) / 1e9


def _fraction(value: int, digits: int) -> str:
    """Render ``value / 10**digits`` without trailing zeros, like Go's ``fmtFrac``/``fmtInt``."""
    whole, frac = divmod(value, 10**digits)
    frac_text = f"{frac:0{digits}d}".rstrip("0") if digits else ""
    return f"{whole}.{frac_text}" if frac_text else str(whole)


def format_duration(seconds: float) -> str:
    """Render seconds as AIStore does: Go's ``Duration.String()`` minus a trailing ``0s`` after ``m``.

    :param seconds: a duration in seconds (rounded to nanoseconds)
    :return: e.g. ``45s``, ``5m``, ``1m30s``, ``1h0m``, ``1.5s``, ``500ms``, ``0s``
    """
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000:
        text = f"{u}ns"
    elif u < 1_000_000:
        text = _fraction(u, 3) + "\u00b5s"
    elif u < 1_000_000_000:
        text = _fraction(u, 6) + "ms"
    else:
        secs_ns = u % 60_000_000_000
        minutes_total = u // 60_000_000_000
        text = _fraction(secs_ns, 9) + "s"
        if minutes_total:
            hours, minutes = divmod(minutes_total, 60)
            text = f"{minutes}m" + text
            if hours:
                text = f"{hours}h" + text
    text = sign + text
    if text.endswith("m0s"):
        text = text[:-2]
    return text


def probing_interval(timeout: float) -> float:
    """Return how often to poll for pod readiness: ``max(max(min(t/8, 1s), t/64), 100ms)``.

    :param timeout: the overall wait in seconds
    :return: the poll interval in seconds (45 s → 1 s, 5 min → 4.6875 s, 500 ms → 100 ms)
    """
    return max(max(min(timeout / 8, 1.0), timeout / 64), 0.1)
