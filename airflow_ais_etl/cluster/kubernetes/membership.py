"""Notice membership changes of a running ETL: targets (Ready nodes) joining or leaving, pods dying.

A :class:`Baseline` records what a job saw when it started; pure functions say what changed since
(:func:`target_changes`, :func:`pod_change`). :class:`MembershipWatcher` watches nodes and the
ETL's pods and, on any event, asks its :class:`MembershipSource` (the backend) for the cause.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from airflow_ais_etl.cluster.base import MembershipWatch
from airflow_ais_etl.cluster.kubernetes.objects import (
    is_deleting,
    label_of,
    name_of,
    phase_of,
    restarts,
    sidecar_names,
)
from airflow_ais_etl.cluster.kubernetes.pods import KubeGone
from airflow_ais_etl.etl.podspec import POD_LABEL_TARGET, label_value

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from airflow_ais_etl.cluster.kubernetes.pods import WatchStream

__all__ = [
    "Baseline",
    "MembershipSource",
    "MembershipWatcher",
    "PodSeen",
    "WatchKind",
    "exit_code",
    "node_ready",
    "pod_change",
    "take_baseline",
    "target_changes",
    "target_id",
]

log = logging.getLogger(__name__)


class WatchKind(str, Enum):
    """What a membership watch follows: the target nodes, or the ETL's pods."""

    NODES = "nodes"
    PODS = "pods"

    def __str__(self) -> str:
        return self.value


_RETRY_SECONDS = 1.0


def node_ready(node: Mapping[str, Any]) -> bool:
    """Tell whether a node is Ready and schedulable."""
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    conds = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def target_id(node_name: str) -> str:
    """Return the target id of a node: its name made a label value (lower case, ``[a-z0-9-]``)."""
    return label_value(re.sub(r"[^a-z0-9-]", "-", node_name.lower()).strip("-") or node_name)


def exit_code(pod: Mapping[str, Any], baseline_restarts: Mapping[str, int]) -> int | None:
    """Return the exit code of a serving container that exited since the baseline, else None."""
    status = pod.get("status") or {}
    sidecars = sidecar_names(pod)
    statuses = list(status.get("containerStatuses") or []) + [
        cs for cs in status.get("initContainerStatuses") or [] if cs.get("name") in sidecars
    ]
    for cs in statuses:
        name = str(cs.get("name"))
        terminated = (cs.get("state") or {}).get("terminated")
        if terminated:
            return int(terminated.get("exitCode") or 0)
        if int(cs.get("restartCount") or 0) > baseline_restarts.get(name, 0):
            last = (cs.get("lastState") or {}).get("terminated") or {}
            return int(last.get("exitCode") or 0)
    return None


@dataclass(frozen=True)
class PodSeen:
    """One ETL pod as the baseline saw it: a different uid or more restarts later is a change."""

    uid: str | None
    restarts: Mapping[str, int]


@dataclass(frozen=True)
class Baseline:
    """What a membership watch compares against, and the resourceVersions its watches start at."""

    targets: tuple[str, ...]
    pods: Mapping[str, PodSeen]
    """The live pods by target id."""
    nodes_rv: str
    pods_rv: str

    def resource_version(self, kind: WatchKind) -> str:
        return self.nodes_rv if kind is WatchKind.NODES else self.pods_rv


def take_baseline(
    nodes: Iterable[Mapping[str, Any]], nodes_rv: str, pods: Iterable[Mapping[str, Any]], pods_rv: str
) -> Baseline:
    """Return the baseline of listed target nodes and ETL pods."""
    targets = tuple(sorted(target_id(name_of(n)) for n in nodes if node_ready(n)))
    seen = {
        label_of(p, POD_LABEL_TARGET): PodSeen((p.get("metadata") or {}).get("uid"), restarts(p))
        for p in pods
        if not is_deleting(p)
    }
    return Baseline(targets, seen, nodes_rv, pods_rv)


def target_changes(before: Iterable[str], now: Iterable[str]) -> str | None:
    """Name the targets that left or joined (None when the membership is the same)."""
    old, new = set(before), set(now)
    changes = [f"target {t} left" for t in sorted(old - new)]
    changes += [f"target {t} joined" for t in sorted(new - old)]
    return ", ".join(changes) or None


def pod_change(name: str, baseline: Baseline, pods: Iterable[Mapping[str, Any]]) -> str | None:
    """Name what happened to the pods of ETL ``name`` since the baseline (None when nothing did).

    :param pods: the ETL's pods now, terminating ones included
    """
    by_target = {label_of(p, POD_LABEL_TARGET): p for p in pods}
    if all(is_deleting(p) for p in by_target.values()):
        return f"etl {name} stopped"
    for tid, seen in sorted(baseline.pods.items()):
        pod = by_target.get(tid)
        if pod is None or is_deleting(pod):
            return f"pod of {tid} was deleted"
        if (pod.get("metadata") or {}).get("uid") != seen.uid:
            return f"pod of {tid} was replaced"
        code = exit_code(pod, seen.restarts)
        if code is not None:
            return f"pod of {tid} exited with code {code}"
        phase = phase_of(pod)
        if phase.finished:
            return f"pod of {tid} ran to completion (phase {phase})"
    return None


class MembershipSource(Protocol):
    """What a :class:`MembershipWatcher` needs of the backend."""

    def baseline(self, name: str) -> Baseline: ...

    def open_watch(self, name: str, kind: WatchKind, resource_version: str) -> WatchStream: ...

    def relist_version(self, name: str, kind: WatchKind) -> str: ...

    def membership_cause(self, name: str, baseline: Baseline) -> str | None: ...

    def record_abort(self, name: str, cause: str | None) -> None: ...


class MembershipWatcher(MembershipWatch):
    """Watch the target nodes and the ETL's pods; any event triggers a diagnosis against the baseline.

    ``on_change(cause)`` is called once, from a watch thread; a cause that is not the ETL's own stop
    is recorded as the abort cause first, so every other worker sees it.
    """

    def __init__(self, source: MembershipSource, name: str, on_change: Callable[[str], None]) -> None:
        self._source = source
        self._name = name
        self._on_change = on_change
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._streams: set[WatchStream] = set()
        self._fired = False
        self._baseline = source.baseline(name)
        self._threads = [
            threading.Thread(target=self._run, args=(kind,), name=f"etl-aborter-{name}-{kind}", daemon=True)
            for kind in WatchKind
        ]
        for t in self._threads:
            t.start()
        self._check()  # anything that changed between the baseline and the first event

    def _run(self, kind: WatchKind) -> None:
        rv = self._baseline.resource_version(kind)
        while not self._stop.is_set():
            stream = self._source.open_watch(self._name, kind, rv)
            with self._lock:
                self._streams.add(stream)
            if self._stop.is_set():
                stream.close()
            try:
                for etype, obj in stream:
                    rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                    if etype != "BOOKMARK":
                        self._check()
            except KubeGone:
                if self._stop.is_set():
                    return
                rv = self._source.relist_version(self._name, kind)
                self._check()
            except Exception as exc:  # API hiccups must not kill the watch; re-list and go on
                if self._stop.is_set():
                    return
                log.debug("etl %s: %s watch failed (%s); retrying", self._name, kind, exc)
                if self._stop.wait(_RETRY_SECONDS):
                    return
                with contextlib.suppress(Exception):
                    rv = self._source.relist_version(self._name, kind)
                self._check()
            finally:
                with self._lock:
                    self._streams.discard(stream)

    def _check(self) -> None:
        with self._lock:
            if self._fired or self._stop.is_set():
                return
        try:
            cause = self._source.membership_cause(self._name, self._baseline)
        except Exception as exc:  # diagnosis needs the API; a transient failure is not a cause
            log.debug("etl %s: membership check failed: %s", self._name, exc)
            return
        if not cause:
            return
        with self._lock:
            if self._fired or self._stop.is_set():  # closed during the diagnosis: the job is over
                return
            self._fired = True
        if not cause.startswith("etl "):
            with contextlib.suppress(Exception):
                self._source.record_abort(self._name, cause)
        log.warning("etl %s: %s, aborting...", self._name, cause)
        try:
            self._on_change(cause)
        finally:
            self.close()

    def close(self) -> None:
        """Stop watching without waiting: each stream is shut down and its thread ends on its own."""
        self._stop.set()
        with self._lock:
            streams = list(self._streams)
        for s in streams:
            s.close()

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the watch threads to end; tell whether they have."""
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)
        return not any(t.is_alive() for t in self._threads if t is not threading.current_thread())
