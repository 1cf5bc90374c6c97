"""The objects an ETL owns besides its Pods and Services: created with it, deleted with it, by label.

Its gateway Secret, its code ConfigMap (init-code ETLs) and its NetworkPolicy (when the connection
asks for one) carry the ETL's labels minus the per-target ones, so :func:`delete_etl_objects` finds
each by the ETL's selector: stop, delete and the pre-clean of a new start all remove leaked ones.
The ConfigMaps of the last pods' logs (:mod:`~airflow_ais_etl.cluster.kubernetes.lastlogs`) and of
the job registry share the selector but outlive the pods: they are left alone here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.kubernetes.codemap import code_config_map
from airflow_ais_etl.cluster.kubernetes.gateway import etl_token, gateway_secret, gateway_secret_name
from airflow_ais_etl.cluster.kubernetes.lastlogs import is_kept
from airflow_ais_etl.cluster.kubernetes.netpolicy import network_policy
from airflow_ais_etl.cluster.kubernetes.objects import name_of
from airflow_ais_etl.etl.msg import InitCodeMsg

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_ais_etl.cluster.kubernetes.netpolicy import NetworkPolicyConfig
    from airflow_ais_etl.cluster.kubernetes.pods import KubeClient
    from airflow_ais_etl.etl.msg import InitMsg

__all__ = ["EtlObjects", "delete_etl_objects", "pod_token"]


@dataclass(frozen=True)
class EtlObjects:
    """The Secret, ConfigMap (or None) and NetworkPolicy (or None) of one ETL, built before any is created."""

    secret: dict[str, Any]
    code_map: dict[str, Any] | None
    policy: dict[str, Any] | None

    @classmethod
    def build(
        cls, msg: InitMsg, namespace: str, pod: Mapping[str, Any], policy: NetworkPolicyConfig
    ) -> EtlObjects:
        """Build them from the ETL's first pod (whose labels they share); a size error comes first."""
        code_map = code_config_map(msg, namespace, pod) if isinstance(msg, InitCodeMsg) else None
        return cls(
            gateway_secret(msg.name, namespace, pod),
            code_map,
            network_policy(msg.name, namespace, pod, policy) if policy.enabled else None,
        )

    def create(self, kube: KubeClient) -> None:
        """Create them, the NetworkPolicy first (so no pod is ever reachable without it)."""
        if self.policy is not None:
            kube.create_network_policy(self.policy)
        kube.create_secret(self.secret)
        if self.code_map is not None:
            kube.create_config_map(self.code_map)


def pod_token(kube: KubeClient, etl_name: str) -> str | None:
    """Return the pod token in the ETL's Secret (None while it has none): the engine sends it."""
    return etl_token(kube.read_secret(gateway_secret_name(etl_name)))


def delete_etl_objects(kube: KubeClient, selector: str, *, policies: bool = True) -> None:
    """Delete the Secrets, ConfigMaps and (when ``policies``) NetworkPolicies matching an ETL's selector.

    The last pods' logs and the job registry stay (``rm`` removes them).
    """
    for secret in kube.list_secrets(selector):
        kube.delete_secret(name_of(secret))
    for config_map in kube.list_config_maps(selector):
        if not is_kept(config_map):
            kube.delete_config_map(name_of(config_map))
    if policies:
        for policy in kube.list_network_policies(selector):
            kube.delete_network_policy(name_of(policy))
