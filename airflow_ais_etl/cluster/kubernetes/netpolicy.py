"""An optional NetworkPolicy per ETL: its pods accept traffic only from the Airflow workers.

Off by default (``network_policy``). When on, the policy selects the ETL's pods by the ETL's
selector labels and allows ingress from:

- the workers named in the connection: ``network_policy_namespaces`` (namespace labels) and/or
  ``network_policy_pods`` (pod labels; with no namespace labels, such pods in any namespace), and
- the ETL's own pods, whose gateway sidecar the transformer calls back on the pod's IP. Traffic
  inside one pod is not subject to NetworkPolicy anyway; the rule covers network plugins that
  route a pod's traffic to its own IP through the node.

Everything else is refused once the cluster's network plugin enforces NetworkPolicy (many do not:
then the policy is stored and has no effect). The policy is labelled like the ETL's other objects,
so it is found and deleted with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.kubernetes.objects import LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGED_BY
from airflow_ais_etl.etl.podoptions import check_labels
from airflow_ais_etl.etl.podspec import (
    POD_LABEL_NAME,
    POD_LABEL_NODE,
    POD_LABEL_TARGET,
    label_value,
    pod_name,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["API_VERSION", "NetworkPolicyConfig", "network_policy", "network_policy_name"]

API_VERSION = "networking.k8s.io/v1"
_PER_POD_LABELS = (POD_LABEL_NAME, POD_LABEL_NODE, POD_LABEL_TARGET)


@dataclass(frozen=True)
class NetworkPolicyConfig:
    """Whether to create a NetworkPolicy per ETL, and which workers it lets in."""

    enabled: bool = False
    namespaces: Mapping[str, str] = field(default_factory=dict)
    pods: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for labels in (self.namespaces, self.pods):
            check_labels(labels, reserved=False)
        if self.enabled and not (self.namespaces or self.pods):
            raise ValueError(
                "network_policy is on but names no workers: set network_policy_namespaces and/or "
                "network_policy_pods (labels of the Airflow workers' namespace and pods), or the ETL "
                "pods would accept traffic from nobody"
            )

    def worker_peer(self) -> dict[str, Any]:
        """Return the ``from`` peer that selects the Airflow workers."""
        peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": dict(self.namespaces)}}
        if self.pods:
            peer["podSelector"] = {"matchLabels": dict(self.pods)}
        return peer


def network_policy_name(etl_name: str) -> str:
    """Name the NetworkPolicy of an ETL (a DNS label, like its pods' names)."""
    return pod_name(etl_name, "ingress")


def network_policy(
    etl_name: str, namespace: str, pod: Mapping[str, Any], config: NetworkPolicyConfig
) -> dict[str, Any]:
    """Return the ETL's NetworkPolicy, labelled like ``pod`` minus the per-target labels."""
    labels = {k: v for k, v in (pod["metadata"].get("labels") or {}).items() if k not in _PER_POD_LABELS}
    labels["app.kubernetes.io/component"] = "network-policy"
    etl_pods = {"matchLabels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_INSTANCE: label_value(etl_name)}}
    return {
        "apiVersion": API_VERSION,
        "kind": "NetworkPolicy",
        "metadata": {"name": network_policy_name(etl_name), "namespace": namespace, "labels": labels},
        "spec": {
            "podSelector": etl_pods,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [config.worker_peer(), {"podSelector": etl_pods}]}],
        },
    }
