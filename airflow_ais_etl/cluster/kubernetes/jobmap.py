"""The Kubernetes backend's job registries: one ConfigMap per ETL, ``<etl>-jobs``, key ``jobs``.

Per ETL, not a key of the shared ``ais-etl-md``: running jobs rewrite their record every few
seconds, and those writes must neither race the MD and lease edits (optimistic concurrency retries
on every conflict) nor grow that one document. Labelled like the ETL's other objects with its own
component, it outlives stops and starts (a stopped ETL lists its last jobs) and goes with ``rm``
(:meth:`~airflow_ais_etl.cluster.kubernetes.backend.KubernetesBackend.forget`).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.kubernetes.lastlogs import kept_labels
from airflow_ais_etl.cluster.kubernetes.pods import KubeConflict
from airflow_ais_etl.etl.errors import EtlError
from airflow_ais_etl.etl.podspec import pod_name

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_ais_etl.cluster.kubernetes.pods import KubeClient

__all__ = ["JOBS_COMPONENT", "ConfigMapJobs", "jobs_config_map_name"]

JOBS_COMPONENT = "jobs"
_RETRIES = 20


def jobs_config_map_name(etl_name: str) -> str:
    """Name the ConfigMap of ETL ``etl_name``'s job registry (a DNS label)."""
    return pod_name(etl_name, JOBS_COMPONENT)


def _doc(cm: dict[str, Any] | None) -> dict[str, Any]:
    try:
        value = json.loads(((cm or {}).get("data") or {}).get("jobs") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class ConfigMapJobs:
    """The job registry methods of the Kubernetes backend (``self.kube`` is its client)."""

    kube: KubeClient

    def read_jobs(self, name: str) -> dict[str, Any]:
        return _doc(self.kube.read_config_map(jobs_config_map_name(name)))

    def update_jobs(self, name: str, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
        """Read, change and write back with the resourceVersion read; retry when someone wrote first."""
        cm_name = jobs_config_map_name(name)
        for attempt in range(_RETRIES):
            cm = self.kube.read_config_map(cm_name)
            doc = _doc(cm)
            change(doc)
            metadata: dict[str, Any] = {
                "name": cm_name,
                "namespace": self.kube.namespace,
                "labels": kept_labels(name, JOBS_COMPONENT),
            }
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": metadata,
                "data": {"jobs": json.dumps(doc)},
            }
            try:
                if cm is None:
                    self.kube.create_config_map(body)
                else:
                    metadata["resourceVersion"] = cm["metadata"]["resourceVersion"]
                    self.kube.replace_config_map(body)
            except KubeConflict:
                time.sleep(min(0.01 * (attempt + 1), 0.2))
                continue
            return doc
        raise EtlError(
            f"configmap {self.kube.namespace}/{cm_name} kept changing: gave up after {_RETRIES} tries"
        )

    def forget_jobs(self, name: str) -> None:
        self.kube.delete_config_map(jobs_config_map_name(name))
