"""Read Kubernetes objects in their dict (JSON) form, and name the labels every ETL object carries.

Pure functions only: the other modules of this package share them instead of each digging through
``metadata``/``spec``/``status`` its own way.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.etl.podspec import label_value

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "LABEL_INSTANCE",
    "LABEL_MANAGED_BY",
    "MANAGED_BY",
    "PodPhase",
    "conditions",
    "container_statuses",
    "etl_selector",
    "is_deleting",
    "label_of",
    "main_container",
    "main_port",
    "name_of",
    "phase_of",
    "restarts",
    "selector",
    "sidecar_names",
]

MANAGED_BY = "airflow-ais-etl"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_INSTANCE = "app.kubernetes.io/instance"


class PodPhase(str, Enum):
    """The phase of a pod, as its status reports it."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"

    def __str__(self) -> str:
        return self.value

    @property
    def finished(self) -> bool:
        """Tell whether the pod ran to completion (its containers will not run again)."""
        return self in (PodPhase.SUCCEEDED, PodPhase.FAILED)


def selector(labels: Mapping[str, str]) -> str:
    """Render ``labels`` as an equality label selector (sorted, so equal maps give equal text)."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def etl_selector(name: str) -> str:
    """Return the label selector of every Pod and Service of ETL ``name``."""
    return selector({LABEL_MANAGED_BY: MANAGED_BY, LABEL_INSTANCE: label_value(name)})


def name_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def label_of(obj: Mapping[str, Any], key: str) -> str:
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(key, ""))


def is_deleting(obj: Mapping[str, Any]) -> bool:
    """Tell whether the object is terminating (it has a ``deletionTimestamp``)."""
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def phase_of(pod: Mapping[str, Any]) -> PodPhase:
    """Return the pod's phase (``Unknown`` when its status has none yet, or one this code does not know)."""
    try:
        return PodPhase(str((pod.get("status") or {}).get("phase") or PodPhase.UNKNOWN.value))
    except ValueError:
        return PodPhase.UNKNOWN


def conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Return the object's status conditions by type."""
    return {str(c.get("type")): c for c in (obj.get("status") or {}).get("conditions") or []}


def main_container(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the first (serving) container of a pod spec."""
    containers: list[Mapping[str, Any]] = (pod.get("spec") or {}).get("containers", [{}])
    return containers[0]


def main_port(pod: Mapping[str, Any]) -> int:
    """Return the first port of the main container (0 when it declares none)."""
    ports = main_container(pod).get("ports") or [{}]
    return int(ports[0].get("containerPort") or 0)


def sidecar_names(pod: Mapping[str, Any]) -> set[str]:
    """Return the names of native sidecars (init containers with ``restartPolicy: Always``)."""
    spec = pod.get("spec") or {}
    return {
        str(c.get("name")) for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"
    }


def container_statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Return the statuses of the init containers, then of the containers."""
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])


def restarts(pod: Mapping[str, Any]) -> dict[str, int]:
    """Return the restart count of every container by name."""
    return {str(cs.get("name")): int(cs.get("restartCount") or 0) for cs in container_statuses(pod)}
