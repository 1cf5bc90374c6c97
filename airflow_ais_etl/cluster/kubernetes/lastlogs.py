"""Pod logs on Kubernetes: the running pods', or the last lines a stopped or aborted ETL's pods left.

Stop and abort delete the pods, and their logs with them; yet the task of an aborted job should
quote the failing target's log, and the ETL view should show it, from any worker. So before the
pods go, the backend keeps the tail of each pod's log (bounded: :data:`TAIL_LINES` lines and
:data:`TAIL_BYTES` bytes per target) in one ConfigMap per ETL, ``<etl>-last-logs``:

- per ETL, not a key of the shared ``ais-etl-md`` ConfigMap: logs of many ETLs would crowd that
  1 MiB document, and every MD write would copy them;
- labelled like the ETL's other objects (so ``kubectl -l`` finds it) with its own component,
  which :func:`~airflow_ais_etl.cluster.kubernetes.etlobjects.delete_etl_objects` leaves alone:
  it outlives the pods, is replaced by the next stop and removed by the next start and by ``rm``.

Logs may hold data: the ConfigMap lives in the ETL's namespace, readable by whoever may read its
ConfigMaps (docs/security.md).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.base import PodLogs
from airflow_ais_etl.cluster.kubernetes.objects import (
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    label_of,
    main_container,
    name_of,
    restarts,
)
from airflow_ais_etl.cluster.kubernetes.pods import KubeApiError, KubeConflict
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.podspec import POD_LABEL_TARGET, label_value, pod_name

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from airflow_ais_etl.cluster.kubernetes.pods import KubeClient

__all__ = [
    "LAST_LOGS_COMPONENT",
    "TAIL_BYTES",
    "TAIL_LINES",
    "drop_last_logs",
    "is_kept",
    "kept_labels",
    "keep_last_logs",
    "last_logs_name",
    "live_logs",
    "read_last_logs",
    "select_target",
    "tail_of",
]

TAIL_LINES = 50
TAIL_BYTES = 16 * 1024
_TOTAL_BYTES = 900 * 1024
"""Budget of the whole ConfigMap (the API server refuses more than 1 MiB of data)."""
LAST_LOGS_COMPONENT = "last-logs"
_COMPONENT = "app.kubernetes.io/component"


def last_logs_name(etl_name: str) -> str:
    """Name the ConfigMap that keeps ETL ``etl_name``'s last pod logs (a DNS label)."""
    return pod_name(etl_name, LAST_LOGS_COMPONENT)


KEPT_COMPONENTS = frozenset({LAST_LOGS_COMPONENT, "jobs"})
"""Components of an ETL's ConfigMaps that outlive its pods: its last logs and its job registry."""


def kept_labels(etl_name: str, component: str) -> dict[str, str]:
    """Return the labels of an ETL's ConfigMap that outlives its pods (found by the ETL's selector)."""
    return {LABEL_MANAGED_BY: MANAGED_BY, LABEL_INSTANCE: label_value(etl_name), _COMPONENT: component}


def is_kept(obj: Mapping[str, Any]) -> bool:
    """Tell whether ``obj`` outlives the ETL's pods (stop and the pre-clean of a start keep it)."""
    return label_of(obj, _COMPONENT) in KEPT_COMPONENTS


def tail_of(text: str, lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> str:
    """Return the last ``lines`` lines of ``text``, cut at a line start to at most ``max_bytes`` bytes."""
    kept = "\n".join(text.splitlines()[-lines:])
    raw = kept.encode("utf-8")
    if len(raw) <= max_bytes:
        return kept
    cut = raw[-max_bytes:].decode("utf-8", errors="ignore")
    return cut.split("\n", 1)[1] if "\n" in cut else cut


def _pod_text(kube: KubeClient, pod: Mapping[str, Any], tail_lines: int | None) -> str:
    """Return the main container's log; after a restart, the previous run's log first (it failed)."""
    container = str(main_container(pod).get("name"))
    text = kube.pod_log(name_of(pod), container, tail_lines=tail_lines)
    if restarts(pod).get(container):
        try:
            before = kube.pod_log(name_of(pod), container, tail_lines=tail_lines, previous=True)
        except KubeApiError:
            return text
        text = f"{before}\n--- container restarted ---\n{text}"
    return text


def select_target(name: str, logs: list[PodLogs], target_id: str | None) -> list[PodLogs]:
    """Return the logs of ``target_id`` (all without one).

    :raises ValidationError: ``target_id`` is not one of the pods' targets
    """
    tids = [p.target_id for p in logs]
    if target_id is not None and target_id not in tids:
        raise ValidationError(f"unknown target {target_id!r} for etl {name} (targets: {', '.join(tids)})")
    return [p for p in logs if target_id in (None, p.target_id)]


def live_logs(
    kube: KubeClient, pods: Iterable[Mapping[str, Any]], tail_lines: int | None = None
) -> list[PodLogs]:
    """Return the logs of ``pods`` per target (an unreadable one says why in its text)."""
    out = []
    for pod in pods:
        try:
            text = _pod_text(kube, pod, tail_lines)
        except KubeApiError as exc:
            text = f"<logs unavailable: {exc}>"
        out.append(PodLogs(label_of(pod, POD_LABEL_TARGET), name_of(pod), text))
    return out


def _body(namespace: str, etl_name: str, logs: list[PodLogs]) -> dict[str, Any]:
    budget = min(TAIL_BYTES, _TOTAL_BYTES // max(len(logs), 1))
    doc = [
        {"target_id": p.target_id, "pod": p.pod_name, "logs": tail_of(p.logs, max_bytes=budget)} for p in logs
    ]
    labels = kept_labels(etl_name, LAST_LOGS_COMPONENT)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": last_logs_name(etl_name), "namespace": namespace, "labels": labels},
        "data": {"etl": etl_name, "pods": json.dumps(doc)},
    }


def keep_last_logs(kube: KubeClient, etl_name: str, pods: Iterable[Mapping[str, Any]]) -> None:
    """Store the log tail of each of ``pods`` (about to be deleted), replacing what was kept before."""
    logs = live_logs(kube, pods, tail_lines=TAIL_LINES)
    if not logs:
        return
    body = _body(kube.namespace, etl_name, logs)
    try:
        kube.create_config_map(body)
    except KubeConflict:
        kube.replace_config_map(body)  # no resourceVersion: the last stop wins


def read_last_logs(kube: KubeClient, etl_name: str) -> list[PodLogs]:
    """Return the log tails kept by the last stop or abort of ``etl_name`` (empty when none)."""
    cm = kube.read_config_map(last_logs_name(etl_name))
    data = (cm or {}).get("data") or {}
    if data.get("etl") != etl_name:
        return []
    try:
        doc = json.loads(data.get("pods") or "[]")
    except ValueError:
        return []
    return [PodLogs(str(p["target_id"]), str(p["pod"]), str(p["logs"])) for p in doc if isinstance(p, dict)]


def drop_last_logs(kube: KubeClient, etl_name: str) -> None:
    """Remove what the last stop kept (a new start, or ``rm``)."""
    kube.delete_config_map(last_logs_name(etl_name))
