"""Read a pod's core/v1 Events: how often its image failed to pull, and its last warnings (pure).

The kubelet and the scheduler aggregate repeated events into one with a ``count``; these helpers
take the events as the API lists them (dicts) and work on real clusters and the emulator alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["PULL_FAILED_PREFIX", "event_line", "pull_failures", "warning_lines"]

PULL_FAILED_PREFIX = "Failed to pull image"
"""How the kubelet starts the message of a ``Failed`` event about one failed pull."""


def _count(event: Mapping[str, Any]) -> int:
    series = event.get("series") or {}
    return max(int(event.get("count") or 0), int(series.get("count") or 0), 1)


def pull_failures(events: Iterable[Mapping[str, Any]], container: str | None = None) -> int:
    """Count the failed image pulls the events report (of one container's image when named)."""
    total = 0
    for e in events:
        if e.get("reason") != "Failed" or not str(e.get("message") or "").startswith(PULL_FAILED_PREFIX):
            continue
        path = str((e.get("involvedObject") or {}).get("fieldPath") or "")
        if container is not None and path and not path.endswith(f"{{{container}}}"):
            continue
        total += _count(e)
    return total


def event_line(event: Mapping[str, Any]) -> str:
    """Render one event as ``Reason: message`` (``(xN)`` when it happened N times)."""
    count = _count(event)
    times = f" (x{count})" if count > 1 else ""
    return f"{event.get('reason')}: {event.get('message')}{times}"


def warning_lines(events: Iterable[Mapping[str, Any]], last: int = 5) -> list[str]:
    """Return the last ``last`` Warning events (oldest first) as :func:`event_line` renders them."""
    warnings = [e for e in events if e.get("type") == "Warning"]
    return [event_line(e) for e in warnings[-last:]]
