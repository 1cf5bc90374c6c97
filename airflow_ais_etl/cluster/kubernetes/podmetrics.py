"""CPU and memory of an ETL's pods from the Kubernetes metrics API (metrics-server)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.base import PodMetrics
from airflow_ais_etl.cluster.kubernetes.objects import label_of, name_of
from airflow_ais_etl.cluster.kubernetes.pods import pod_usage
from airflow_ais_etl.etl.errors import EtlError
from airflow_ais_etl.etl.podspec import POD_LABEL_TARGET

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.kubernetes.pods import KubeClient

__all__ = ["read_metrics"]

_METRICS_TRIES = 10


def read_metrics(kube: KubeClient, name: str, pods: list[dict[str, Any]]) -> list[PodMetrics]:
    """Return CPU and memory of ETL ``name``'s ``pods``, retrying briefly while a sample is missing."""
    out = []
    checked_api = False
    for pod in pods:
        pname = name_of(pod)
        data = None
        for attempt in range(_METRICS_TRIES):
            data = kube.pod_metrics(pname)
            if data is not None:
                break
            if not checked_api:
                checked_api = True
                if not kube.metrics_api_available():
                    raise EtlError(
                        "the metrics API (metrics.k8s.io/v1beta1) is not served by this cluster: "
                        "install metrics-server to see ETL pod CPU and memory",
                        etl_name=name,
                    )
            time.sleep(0.2 * (attempt + 1))
        if data is None:
            raise EtlError(
                f"metrics for pod {kube.namespace}/{pname} do not exist yet (metrics-server samples "
                "pods periodically); retry in a minute",
                etl_name=name,
                pod_name=pname,
            )
        cpu, mem = pod_usage(data)
        out.append(PodMetrics(label_of(pod, POD_LABEL_TARGET), pname, round(cpu, 6), mem))
    return out
