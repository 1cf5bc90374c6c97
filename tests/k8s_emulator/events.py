"""Record core/v1 Events the way the scheduler and kubelet do (deduplicated with a count)."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

from tests.k8s_emulator.objects import ApiError, rfc3339

if TYPE_CHECKING:
    from tests.k8s_emulator.store import Store


class EventRecorder:
    """Create Events about objects; a repeated event bumps ``count`` and ``lastTimestamp``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._names: dict[tuple[str, ...], str] = {}
        self._last_ns = 0

    def record(
        self,
        obj: dict[str, Any],
        reason: str,
        message: str,
        *,
        type_: str = "Normal",
        component: str = "kubelet",
        host: str = "",
        field_path: str = "",
    ) -> None:
        """Record one event about ``obj``; errors (e.g. a terminating namespace) are ignored."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        key = (namespace, str(meta.get("uid")), reason, message, field_path, component, type_)
        now = rfc3339(time.time())
        with self._lock, contextlib.suppress(ApiError):
            name = self._names.get(key)
            if name is not None:
                try:
                    self._store.modify("events", namespace, name, lambda ev: _bump(ev, now))
                    return
                except ApiError:
                    pass
            involved: dict[str, Any] = {
                "kind": obj.get("kind", "Pod"),
                "namespace": namespace,
                "name": meta.get("name"),
                "uid": meta.get("uid"),
                "apiVersion": obj.get("apiVersion", "v1"),
                "resourceVersion": meta.get("resourceVersion"),
            }
            if field_path:
                involved["fieldPath"] = field_path
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{meta.get('name')}.{self._stamp():x}", "namespace": namespace},
                "involvedObject": involved,
                "reason": reason,
                "message": message,
                "source": {"component": component, **({"host": host} if host else {})},
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
                "type": type_,
                "eventTime": None,
                "reportingComponent": component,
                "reportingInstance": host,
            }
            created = self._store.create("events", namespace, event)
            self._names[key] = created["metadata"]["name"]

    def _stamp(self) -> int:
        """Return an increasing nanosecond time: names ``<object>.<hex>`` list oldest first, as the kubelet's do."""
        self._last_ns = max(self._last_ns + 1, time.time_ns())
        return self._last_ns


def _bump(event: dict[str, Any], now: str) -> None:
    event["count"] = int(event.get("count") or 1) + 1
    event["lastTimestamp"] = now
