"""How clients reach an ETL pod: at its pod IP, or through its Service's cluster DNS name.

Pure (no Kubernetes client), so the connection settings can offer the modes without importing the
backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.kubernetes.objects import main_port, name_of

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["ADDRESS_MODES", "POD_IP", "SERVICE", "pod_url"]

POD_IP = "pod-ip"
"""Reach the pod at its IP: works wherever pod IPs are routable (in the cluster, most CNIs)."""
SERVICE = "service"
"""Reach the pod through its Service, ``<name>.<namespace>.svc``: needs the cluster's DNS."""
ADDRESS_MODES = (POD_IP, SERVICE)


def pod_url(pod: Mapping[str, Any], address: str, namespace: str) -> str | None:
    """Return the base URL of a pod's main container, or None while the pod has no IP yet."""
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        return None
    host = ip if address == POD_IP else f"{name_of(pod)}.{namespace}.svc"
    return f"http://{host}:{main_port(pod)}"
