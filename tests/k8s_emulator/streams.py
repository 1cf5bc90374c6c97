"""Produce the two streaming responses: watch events and followed pod logs."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from tests.k8s_emulator.objects import RESOURCES, rfc3339_nano
from tests.k8s_emulator.store import Expired

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.k8s_emulator.logbuffer import LogBuffer
    from tests.k8s_emulator.store import Store, StoredEvent


def event_line(kind: str, obj: dict[str, Any]) -> bytes:
    """Encode one watch event as a JSON line."""
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"


def with_kind(resource: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Return ``obj`` with ``kind`` and ``apiVersion`` first, as single objects and watch events carry them."""
    res = RESOURCES[resource]
    return {
        "kind": res.kind,
        "apiVersion": res.group_version,
        **{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")},
    }


def expired_status(exc: Expired) -> dict[str, Any]:
    """Return the Status a watch sends for a compacted resourceVersion."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": str(exc),
        "reason": "Expired",
        "code": 410,
    }


def translate(event: StoredEvent, matches: Callable[[dict[str, Any]], bool]) -> str | None:
    """Return the event type a filtered watcher sees (objects entering/leaving the selection)."""
    now = matches(event.obj)
    if event.type == "MODIFIED":
        before = event.prev is not None and matches(event.prev)
        if now and before:
            return "MODIFIED"
        if now:
            return "ADDED"
        return "DELETED" if before else None
    return event.type if now else None


def run_watch(
    store: Store,
    resource: str,
    namespace: str | None,
    matches: Callable[[dict[str, Any]], bool],
    resource_version: str,
    timeout: float | None,
    bookmarks: bool,
    write: Callable[[bytes], None],
    alive: Callable[[], bool],
    bookmark_interval: float = 1.0,
) -> None:
    """Stream watch events until the timeout, the client leaves or the emulator closes."""
    deadline = time.monotonic() + timeout if timeout else None
    with store.cond:
        if resource_version in ("", "0"):
            initial, pos = store.list(resource, namespace, matches)
            start: list[tuple[str, dict[str, Any]]] = [("ADDED", o) for o in initial]
        else:
            pos = int(resource_version)
            start = []
    for first_kind, obj in start:
        write(event_line(first_kind, with_kind(resource, obj)))
    next_bookmark = time.monotonic() + bookmark_interval
    while alive():
        try:
            with store.cond:
                events = store.events_after(pos)
                if not events and not store.closed:
                    store.cond.wait(0.2)
                    events = store.events_after(pos)
        except Expired as exc:
            write(event_line("ERROR", expired_status(exc)))
            return
        if store.closed:
            return
        for ev in events:
            pos = ev.rv
            if ev.resource != resource or (namespace is not None and ev.namespace != namespace):
                continue
            kind = translate(ev, matches)
            if kind is not None:
                write(event_line(kind, with_kind(resource, ev.obj)))
        now = time.monotonic()
        if bookmarks and now >= next_bookmark:
            res = RESOURCES[resource]
            mark = {
                "kind": res.kind,
                "apiVersion": res.group_version,
                "metadata": {"resourceVersion": str(pos)},
            }
            write(event_line("BOOKMARK", mark))
            next_bookmark = now + bookmark_interval
        if deadline is not None and now >= deadline:
            return


def format_line(ts: float, line: bytes, timestamps: bool) -> bytes:
    """Prefix a log line with its RFC 3339 timestamp when asked."""
    return (rfc3339_nano(ts).encode() + b" " + line) if timestamps else line


def run_logs(
    buffer: LogBuffer,
    *,
    follow: bool,
    timestamps: bool,
    tail: int | None,
    since: float | None,
    limit_bytes: int | None,
    write: Callable[[bytes], None],
    alive: Callable[[], bool],
) -> None:
    """Write the selected log lines; with ``follow``, keep writing until the container ends."""
    buffer.pump()
    with buffer.cond:
        lines = list(buffer.lines)
    index = len(lines)
    selected = [entry for entry in lines if since is None or entry[0] >= since]
    if tail is not None:
        selected = selected[-tail:] if tail > 0 else []
    budget = limit_bytes
    for ts, line in selected:
        data = format_line(ts, line, timestamps)
        if budget is not None:
            data = data[:budget]
            budget -= len(data)
        write(data)
        if budget is not None and budget <= 0:
            return
    while follow and alive():
        buffer.pump()
        with buffer.cond:
            if len(buffer.lines) == index:
                if buffer.finished:
                    return
                buffer.cond.wait(0.1)
            fresh = buffer.lines[index:]
            index += len(fresh)
        for ts, line in fresh:
            data = format_line(ts, line, timestamps)
            if budget is not None:
                data = data[:budget]
                budget -= len(data)
            write(data)
            if budget is not None and budget <= 0:
                return
