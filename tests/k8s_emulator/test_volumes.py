"""PersistentVolumeClaims and NetworkPolicies in the emulator, through the official client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.k8s_emulator.helpers import condition, events_for, python_pod, wait_for

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]


def _policy(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "labels": labels},
        "spec": {"podSelector": {"matchLabels": {"app": "etl"}}, "policyTypes": ["Ingress"]},
    }


def test_network_policies_are_served_under_their_group(api_client: client.ApiClient) -> None:
    net = client.NetworkingV1Api(api_client)
    created = net.create_namespaced_network_policy("default", _policy("etl-a", {"etl": "a"}))
    assert created.metadata.uid
    net.create_namespaced_network_policy("default", _policy("etl-b", {"etl": "b"}))
    assert net.read_namespaced_network_policy("etl-a", "default").spec.pod_selector.match_labels == {
        "app": "etl"
    }
    listed = net.list_namespaced_network_policy("default", label_selector="etl=a").items
    assert [p.metadata.name for p in listed] == ["etl-a"]
    net.delete_namespaced_network_policy("etl-a", "default")
    net.delete_collection_namespaced_network_policy("default", label_selector="etl=b")
    assert net.list_namespaced_network_policy("default").items == []
    with pytest.raises(ApiException) as wrong_group:  # not a core resource
        api_client.call_api("/api/v1/namespaces/default/networkpolicies", "GET", _preload_content=False)
    assert wrong_group.value.status == 404
    bad = {**_policy("etl-c", {}), "apiVersion": "v1"}
    with pytest.raises(ApiException) as wrong_version:
        net.create_namespaced_network_policy("default", bad)
    assert wrong_version.value.status == 400


def _claim(name: str, volume: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadOnlyMany"],
            "volumeName": volume,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }


def _volume(name: str, path: Path) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadOnlyMany"],
            "hostPath": {"path": str(path)},
        },
    }


def test_a_pod_waits_for_its_claim_then_reads_the_volume(core_v1: client.CoreV1Api, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello.txt").write_text("from the volume")
    # Mounted elsewhere than its directory: the kubelet maps the mount path in the command to it.
    code = "import sys; sys.exit(0 if open('/mnt/claimed/hello.txt').read() == 'from the volume' else 3)"
    pod = python_pod(
        "claimed",
        code,
        volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": "data-claim", "readOnly": True}}],
    )
    pod["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "d", "mountPath": "/mnt/claimed", "readOnly": True}
    ]
    core_v1.create_namespaced_pod("default", pod)

    def unschedulable_because() -> str:
        scheduled = condition(core_v1.read_namespaced_pod("claimed", "default"), "PodScheduled")
        return str(scheduled.message) if scheduled is not None and scheduled.reason == "Unschedulable" else ""

    missing = 'persistentvolumeclaim "data-claim" not found'
    assert missing in wait_for(unschedulable_because)
    assert ("Warning", "FailedScheduling") in {
        (t, r) for t, r, m in events_for(core_v1, "claimed") if missing in m
    }

    core_v1.create_namespaced_persistent_volume_claim("default", _claim("data-claim", "data-pv"))
    wait_for(lambda: "pod has unbound immediate PersistentVolumeClaims" in unschedulable_because())
    core_v1.create_persistent_volume(_volume("data-pv", data))
    try:
        done = wait_for(
            lambda: core_v1.read_namespaced_pod("claimed", "default").status.phase in ("Succeeded", "Failed")
        )
        assert done
        assert core_v1.read_namespaced_pod("claimed", "default").status.phase == "Succeeded"
    finally:
        core_v1.delete_persistent_volume("data-pv")
