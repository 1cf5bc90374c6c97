"""Keep API objects with a global resourceVersion and an event history that watches replay."""

from __future__ import annotations

import copy
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.k8s_emulator.objects import RESOURCES, ApiError, already_exists, conflict, not_found, rfc3339

if TYPE_CHECKING:
    import builtins
    from collections.abc import Callable

Key = tuple[str, str, str]  # (resource, namespace, name); namespace "" when cluster-scoped
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


@dataclass(frozen=True)
class StoredEvent:
    """One change, as a watch replays it."""

    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: str
    namespace: str
    obj: dict[str, Any]
    prev: dict[str, Any] | None


class Expired(Exception):
    """The requested resourceVersion is older than the kept history."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class Store:
    """All objects of the emulated cluster, guarded by one lock.

    :param history: how many change events are kept for watch replay; older ones are compacted
    """

    def __init__(self, history: int = 5000) -> None:
        self.cond = threading.Condition(threading.RLock())
        self.rv = 0
        self.compacted = 0  # events with rv <= compacted are gone
        self._objects: dict[Key, dict[str, Any]] = {}
        self._history: deque[StoredEvent] = deque()
        self._history_size = history
        self.closed = False

    # -- helpers --------------------------------------------------------------------------
    def _bump(self) -> int:
        self.rv += 1
        return self.rv

    def _record(self, kind: str, key: Key, obj: dict[str, Any], prev: dict[str, Any] | None) -> None:
        self._history.append(
            StoredEvent(int(obj["metadata"]["resourceVersion"]), kind, key[0], key[1], obj, prev)
        )
        while len(self._history) > self._history_size:
            self.compacted = self._history.popleft().rv
        self.cond.notify_all()

    def compact(self) -> None:
        """Drop the whole event history: older resourceVersions now answer 410 Gone."""
        with self.cond:
            self._history.clear()
            self.compacted = self.rv

    def close(self) -> None:
        """Wake every watcher so that streams end."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    # -- reads ----------------------------------------------------------------------------
    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        """Return a copy of one object or raise 404."""
        with self.cond:
            obj = self._objects.get((resource, namespace, name))
            if obj is None:
                raise not_found(resource, name)
            return copy.deepcopy(obj)

    def find(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Return a copy of one object, or None."""
        with self.cond:
            obj = self._objects.get((resource, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Return copies of the matching objects (sorted by namespace, name) and the current version."""
        with self.cond:
            items = [
                copy.deepcopy(obj)
                for (res, ns, _name), obj in sorted(self._objects.items())
                if res == resource
                and (namespace is None or ns == namespace)
                and (predicate is None or predicate(obj))
            ]
            return items, self.rv

    def events_after(self, rv: int) -> builtins.list[StoredEvent]:
        """Return the recorded events newer than ``rv`` or raise :class:`Expired`."""
        with self.cond:
            if rv < self.compacted:
                raise Expired(rv, self.compacted + 1)
            return [e for e in self._history if e.rv > rv]

    # -- writes ---------------------------------------------------------------------------
    def create(
        self, resource: str, namespace: str, obj: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Store a new object: resolve ``generateName``, stamp uid/time/version, emit ADDED."""
        with self.cond:
            res = RESOURCES[resource]
            meta = obj.setdefault("metadata", {})
            if res.namespaced:
                ns_obj = self._objects.get(("namespaces", "", namespace))
                if ns_obj is None:
                    raise not_found("namespaces", namespace)
                if ns_obj.get("metadata", {}).get("deletionTimestamp"):
                    raise ApiError(
                        403,
                        "Forbidden",
                        f'{resource} "{meta.get("name") or meta.get("generateName", "")}" is forbidden: unable to create '
                        f"new content in namespace {namespace} because it is being terminated",
                    )
                meta["namespace"] = namespace
            else:
                meta.pop("namespace", None)
            if not meta.get("name") and meta.get("generateName"):
                for _ in range(100):
                    name = meta["generateName"] + "".join(random.choices(_GENERATE_ALPHABET, k=5))
                    if (resource, namespace, name) not in self._objects:
                        meta["name"] = name
                        break
            key = (resource, namespace if res.namespaced else "", str(meta.get("name", "")))
            if key in self._objects:
                raise already_exists(resource, key[2])
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = rfc3339(time.time())
            meta.pop("deletionTimestamp", None)
            meta.pop("deletionGracePeriodSeconds", None)
            if dry_run:
                meta["resourceVersion"] = str(self.rv)
                return copy.deepcopy(obj)
            meta["resourceVersion"] = str(self._bump())
            self._objects[key] = obj
            self._record("ADDED", key, copy.deepcopy(obj), None)
            return copy.deepcopy(obj)

    def modify(
        self,
        resource: str,
        namespace: str,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any] | None],
        *,
        expected_rv: str | None = None,
    ) -> dict[str, Any]:
        """Apply ``change`` to a copy of the object; store it and emit MODIFIED when it differs.

        ``change`` may modify the copy in place (return None) or return a new object. A non-empty
        ``expected_rv`` different from the stored version is a 409 Conflict.
        """
        with self.cond:
            key = (resource, namespace, name)
            current = self._objects.get(key)
            if current is None:
                raise not_found(resource, name)
            if expected_rv and expected_rv != current["metadata"]["resourceVersion"]:
                raise conflict(resource, name)
            work = copy.deepcopy(current)
            result = change(work)
            new = work if result is None else result
            for field in ("uid", "creationTimestamp", "name", "namespace", "resourceVersion"):
                if field in current["metadata"]:
                    new.setdefault("metadata", {})[field] = current["metadata"][field]
            if new == current:
                return copy.deepcopy(current)
            new["metadata"]["resourceVersion"] = str(self._bump())
            self._objects[key] = new
            self._record("MODIFIED", key, copy.deepcopy(new), copy.deepcopy(current))
            return copy.deepcopy(new)

    def remove(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        """Remove an object and emit DELETED (carrying a new resourceVersion)."""
        with self.cond:
            key = (resource, namespace, name)
            current = self._objects.pop(key, None)
            if current is None:
                raise not_found(resource, name)
            current["metadata"]["resourceVersion"] = str(self._bump())
            self._record("DELETED", key, copy.deepcopy(current), None)
            return copy.deepcopy(current)
