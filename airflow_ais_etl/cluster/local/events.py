"""Why a running job must abort, and when that happened: the local backend's cluster events.

Each event is stamped with the wall-clock time at its source (the process that removed a target,
stopped an ETL, or the shim that saw its pod exit), so a watch that sees several at once (a
removal stops pods, and their exits follow) reports the one that happened first, never a
consequence of it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.local.state import write_text_atomic

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    from airflow_ais_etl.cluster.local.processes import LocalPod

__all__ = ["Event", "earliest", "membership_events", "pod_exit_events", "read_event", "write_event"]


@dataclass(frozen=True, order=True)
class Event:
    """A cause of abort: ``at`` is seconds since the epoch, as recorded where it happened."""

    at: float
    cause: str


def write_event(path: Path, cause: str, at: float | None = None) -> Event:
    """Record ``cause`` (stamped ``at``, default now) in ``path`` atomically; return the event."""
    event = Event(time.time() if at is None else at, cause)
    write_text_atomic(path, json.dumps({"cause": event.cause, "at": event.at}))
    return event


def read_event(path: Path) -> Event | None:
    """Return the event recorded in ``path`` (plain text: stamped with the file's mtime), or None."""
    try:
        text = path.read_text()
        mtime = os.stat(path).st_mtime
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("cause"), str):
        return Event(float(data.get("at") or mtime), data["cause"])
    return Event(mtime, text) if text else None


def membership_events(baseline: Mapping[str, Any], now: Mapping[str, Any], changed_at: float) -> list[Event]:
    """Return the target changes between two memberships, stamped with the cluster's change time."""
    left = sorted(set(baseline["targets"]) - set(now["targets"]))
    joined = sorted(set(now["targets"]) - set(baseline["targets"]))
    if not (left or joined):
        return []
    text = ", ".join([f"target {t} left" for t in left] + [f"target {t} joined" for t in joined])
    return [Event(changed_at, text)]


def pod_exit_events(pods: Mapping[str, LocalPod]) -> list[Event]:
    """Return one event per pod a container of which ended, stamped when its shim recorded the exit."""
    out = []
    for tid, pod in pods.items():
        exited = pod.exited()
        if exited:
            out.append(Event(pod.exited_at() or time.time(), f"pod of {tid} exited with code {exited[1]}"))
    return out


def earliest(events: Iterable[Event]) -> Event | None:
    """Return the event that happened first (None when there is none)."""
    return min(events, default=None)
