"""Per-ETL pod options, PersistentVolumeClaims and the NetworkPolicy on the emulator, end to end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_ais_etl.cluster.kubernetes.state import MD_CONFIGMAP
from airflow_ais_etl.etl.definition import EtlDefinition
from airflow_ais_etl.etl.errors import EtlExistsError, PodStartError
from airflow_ais_etl.etl.podsecurity import violations
from airflow_ais_etl.service import AisEtl
from tests.kubernetes.conftest import UPPER, claim_volume, leftovers, make_bucket, validate_sent

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from tests.k8s_emulator.emulator import K8sEmulator
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]

OPTIONS: dict[str, Any] = {
    "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    "pod_labels": {"team": "vision"},
    "pod_annotations": {"owner": "vision@example.com"},
    "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
}


def _definition(**options: Any) -> EtlDefinition:
    return EtlDefinition.from_mapping({"code": UPPER, "pod_options": options or None}, kind="code")


def _pods(backend: KubernetesBackend, name: str) -> list[dict[str, Any]]:
    pods, _ = backend.kube.list_pods(backend.etl_selector(name))
    return pods


def test_etl_options_land_in_the_pods_over_the_connection_and_survive_a_restart(cluster: Cluster) -> None:
    b = cluster.backend(pod_labels={"team": "data", "site": "lab"}, resources={"requests": {"cpu": "50m"}})
    api = AisEtl(b)
    try:
        api.init("opts-etl", _definition(**OPTIONS))
        pods = _pods(b, "opts-etl")
        assert pods
        for pod in pods:
            labels = pod["metadata"]["labels"]
            assert (labels["team"], labels["site"]) == ("vision", "lab")  # merged, the ETL's wins
            assert pod["metadata"]["annotations"]["owner"] == "vision@example.com"
            assert pod["spec"]["containers"][0]["resources"] == OPTIONS["resources"]
            assert OPTIONS["tolerations"][0] in pod["spec"]["tolerations"]
            assert violations(pod) == []
        uids = {p["metadata"]["uid"] for p in pods}
        api.init("opts-etl", _definition(**OPTIONS))  # identical: a no-op (task retries)
        assert {p["metadata"]["uid"] for p in _pods(b, "opts-etl")} == uids
        bigger = {**OPTIONS, "resources": {"requests": {"cpu": "300m"}}}
        with pytest.raises(EtlExistsError, match="different definition"):
            api.init("opts-etl", _definition(**bigger))
        api.stop("opts-etl")
        api.start("opts-etl")  # the options come back from the MD
        assert [p["spec"]["containers"][0]["resources"] for p in _pods(b, "opts-etl")] == [
            OPTIONS["resources"]
        ] * len(pods)
        api.init("opts-etl", EtlDefinition.from_mapping({"code": UPPER, "replace": True}, kind="code"))
        assert [p["spec"]["containers"][0]["resources"] for p in _pods(b, "opts-etl")] == [
            {"requests": {"cpu": "50m"}}
        ] * len(pods)
        api.stop("opts-etl")
        assert leftovers(b) == [f"configmap/{MD_CONFIGMAP}"]
    finally:
        api.stop_all()
        b.kube.delete_config_map(MD_CONFIGMAP)
        b.close()
    assert cluster.emulator is None or validate_sent(cluster.emulator) > 0


def test_claims_hold_fqn_buckets_and_a_network_policy_comes_and_goes(
    cluster: Cluster, emulator: K8sEmulator
) -> None:
    shared = cluster.work / "datasets"
    src = shared / "src"
    data = make_bucket(src, ["a.txt", "b c.txt"])
    b = cluster.backend(
        volume_claims={str(shared): "datasets"},
        network_policy=True,
        network_policy_namespaces={"kubernetes.io/metadata.name": "airflow"},
        network_policy_pods={"component": "worker"},
    )
    api = AisEtl(b)
    pv = claim_volume(b, str(shared), "datasets")
    try:
        api.init_code("claim-etl", UPPER, comm_type="hpush://", arg_type="fqn")
        for pod in _pods(b, "claim-etl"):
            (volume,) = [v for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v]
            assert volume["persistentVolumeClaim"] == {"claimName": "datasets", "readOnly": True}
            assert not any("hostPath" in v for v in pod["spec"]["volumes"])
            assert violations(pod) == []
        for name, payload in data.items():
            assert api.transform_object("claim-etl", str(src), name) == payload.upper()
        (policy,) = b.kube.list_network_policies(b.etl_selector("claim-etl"))
        assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "claim-etl"
        assert policy["spec"]["ingress"][0]["from"][0] == {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "airflow"}},
            "podSelector": {"matchLabels": {"component": "worker"}},
        }
        api.stop("claim-etl")
        assert leftovers(b) == [f"configmap/{MD_CONFIGMAP}"]  # the policy went with the ETL
    finally:
        api.stop_all()
        b.kube.delete_config_map(MD_CONFIGMAP)
        b.kube.core.delete_namespaced_persistent_volume_claim("datasets", b.namespace)
        b.kube.core.delete_persistent_volume(pv)
        b.close()
    assert emulator.received_objects("networkpolicies")
    assert emulator.received_objects("persistentvolumeclaims")
    assert validate_sent(emulator) > 0


def test_a_missing_claim_keeps_pods_pending_and_init_fails_naming_it(
    cluster: Cluster, emulator: K8sEmulator
) -> None:
    b = cluster.backend(volume_claims={str(cluster.work): "no-such-claim"})
    try:
        with pytest.raises(PodStartError, match='persistentvolumeclaim "no-such-claim" not found'):
            AisEtl(b).init_code("noclaim-etl", UPPER)
        assert leftovers(b) == [] or leftovers(b) == [f"configmap/{MD_CONFIGMAP}"]
    finally:
        b.kube.delete_config_map(MD_CONFIGMAP)
        b.close()
