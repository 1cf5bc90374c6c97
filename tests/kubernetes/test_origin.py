"""The Airflow origin on Kubernetes: every Pod and Service a task creates carries it, selectable by label."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.etl.definition import EtlDefinition
from airflow_ais_etl.etl.msg import CODE
from airflow_ais_etl.etl.origin import Origin, origin_key
from tests.kubernetes.conftest import UPPER

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from airflow_ais_etl.service import AisEtl
    from tests.k8s_emulator.emulator import K8sEmulator
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]

ORIGIN = Origin.from_mapping(
    {
        "dag_id": "nightly_etl",
        "task_id": "prepare.init_etl",
        "run_id": "scheduled__2025-01-02T03:04:05+00:00",
        "try_number": 1,
        "map_index": -1,
    }
)


def _ours(objects: list[dict], namespace: str) -> list[dict]:
    return [o for o in objects if o["metadata"].get("namespace") in (None, namespace)]


def test_init_from_a_task_labels_and_annotates_its_objects(
    api: AisEtl, backend: KubernetesBackend, cluster: Cluster, emulator: K8sEmulator
) -> None:
    definition = EtlDefinition.from_mapping({"code": UPPER}, kind=CODE)
    api.init("origin-etl", definition, origin=ORIGIN)

    sent = {r: _ours(emulator.received_objects(r, "create"), cluster.namespace) for r in ("pods", "services")}
    assert len(sent["pods"]) == len(backend.targets()) == len(sent["services"])
    for obj in sent["pods"] + sent["services"]:
        assert ORIGIN.labels().items() <= obj["metadata"]["labels"].items()
        assert ORIGIN.annotations().items() <= obj["metadata"]["annotations"].items()
    assert sent["pods"][0]["metadata"]["annotations"][origin_key("run_id")] == ORIGIN.run_id

    # kubectl get pods -l airflow-ais-etl/dag-id=nightly_etl
    pods, _ = backend.kube.list_pods(f"{origin_key('dag_id')}=nightly_etl")
    assert sorted(p["metadata"]["name"] for p in pods) == sorted(p["metadata"]["name"] for p in sent["pods"])
    assert len(backend.kube.list_services(f"{origin_key('dag_id')}=nightly_etl")) == len(pods)
    assert backend.kube.list_pods(f"{origin_key('dag_id')}=other_dag")[0] == []

    # the same definition from another task and run is still a no-op: no new pods, the first origin stays
    other = Origin.from_mapping(
        {"dag_id": "other_dag", "task_id": "t", "run_id": "manual__x", "try_number": 2}
    )
    info = api.init("origin-etl", definition, origin=other)
    assert info.state == "running"
    assert len(_ours(emulator.received_objects("pods", "create"), cluster.namespace)) == len(sent["pods"])
    assert backend.kube.list_pods(f"{origin_key('dag_id')}=other_dag")[0] == []
    assert len(backend.kube.list_pods(f"{origin_key('dag_id')}=nightly_etl")[0]) == len(pods)
    api.stop("origin-etl")


def test_init_without_origin_adds_no_origin_keys(api: AisEtl, backend: KubernetesBackend) -> None:
    api.init_code("plain-etl", UPPER)
    pods, _ = backend.kube.list_pods("app.kubernetes.io/instance=plain-etl")
    assert pods
    for pod in pods:
        keys = set(pod["metadata"].get("labels") or {}) | set(pod["metadata"].get("annotations") or {})
        assert not any(k.startswith("airflow-ais-etl/") and k != "airflow-ais-etl/io-command" for k in keys)
    api.stop("plain-etl")
