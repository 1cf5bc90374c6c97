"""The emulator's API surface through the official ``kubernetes`` client (no pod processes)."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

if TYPE_CHECKING:
    from tests.k8s_emulator.emulator import K8sEmulator

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]  # every test runs the emulator


def _cm(name: str, labels: dict[str, str] | None = None, **data: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {}},
        "data": data,
    }


def test_discovery_version_and_health(api_client: client.ApiClient, k8s_emulator: K8sEmulator) -> None:
    version = client.VersionApi(api_client).get_code()
    assert version.major == "1"
    assert version.git_version.startswith("v1.")
    assert client.CoreApi(api_client).get_api_versions().versions == ["v1"]
    groups = client.ApisApi(api_client).get_api_versions().groups
    assert [g.name for g in groups] == ["metrics.k8s.io", "networking.k8s.io"]
    resources = {r.name for r in client.CoreV1Api(api_client).get_api_resources().resources}
    assert {
        "pods",
        "pods/log",
        "pods/status",
        "services",
        "nodes",
        "configmaps",
        "secrets",
        "events",
        "namespaces",
    } <= resources


def test_configmap_crud_conflict_and_errors(core_v1: client.CoreV1Api) -> None:
    created = core_v1.create_namespaced_config_map("default", _cm("settings", {"app": "x"}, a="1"))
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert int(created.metadata.resource_version) > 0
    assert created.metadata.namespace == "default"

    read = core_v1.read_namespaced_config_map("settings", "default")
    assert read.data == {"a": "1"}

    with pytest.raises(ApiException) as exists:
        core_v1.create_namespaced_config_map("default", _cm("settings"))
    assert exists.value.status == 409
    assert json.loads(exists.value.body)["reason"] == "AlreadyExists"

    patched = core_v1.patch_namespaced_config_map(
        "settings", "default", {"metadata": {"labels": {"tier": "b"}}, "data": {"b": "2"}}
    )
    assert patched.metadata.labels == {"app": "x", "tier": "b"}
    assert patched.data == {"a": "1", "b": "2"}
    assert int(patched.metadata.resource_version) > int(read.metadata.resource_version)

    json_patched = core_v1.patch_namespaced_config_map(
        "settings", "default", [{"op": "remove", "path": "/data/a"}]
    )
    assert json_patched.data == {"b": "2"}

    stale = read  # carries the old resourceVersion
    stale.data = {"c": "3"}
    with pytest.raises(ApiException) as conflict:
        core_v1.replace_namespaced_config_map("settings", "default", stale)
    assert conflict.value.status == 409
    assert json.loads(conflict.value.body)["reason"] == "Conflict"

    fresh = core_v1.read_namespaced_config_map("settings", "default")
    fresh.data = {"c": "3"}
    replaced = core_v1.replace_namespaced_config_map("settings", "default", fresh)
    assert replaced.data == {"c": "3"}
    assert replaced.metadata.uid == created.metadata.uid

    core_v1.delete_namespaced_config_map("settings", "default")
    with pytest.raises(ApiException) as missing:
        core_v1.read_namespaced_config_map("settings", "default")
    assert missing.value.status == 404
    body = json.loads(missing.value.body)
    assert (body["kind"], body["reason"], body["message"]) == (
        "Status",
        "NotFound",
        'configmaps "settings" not found',
    )


def test_validation_errors_are_422(core_v1: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as bad_name:
        core_v1.create_namespaced_config_map("default", _cm("Bad_Name"))
    assert bad_name.value.status == 422
    assert json.loads(bad_name.value.body)["details"]["causes"][0]["field"] == "metadata.name"

    with pytest.raises(ApiException) as no_name:
        core_v1.create_namespaced_config_map("default", {"metadata": {}, "data": {}})
    assert no_name.value.status == 422

    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}
    with pytest.raises(ApiException) as no_image:
        core_v1.create_namespaced_pod("default", pod)
    assert no_image.value.status == 422
    assert "spec.containers[0].image: Required value" in json.loads(no_image.value.body)["message"]

    svc = {"metadata": {"name": "1svc"}, "spec": {"ports": [{"port": 80}]}}
    with pytest.raises(ApiException) as bad_service:
        core_v1.create_namespaced_service("default", svc)
    assert bad_service.value.status == 422

    with pytest.raises(ApiException) as no_ns:
        core_v1.create_namespaced_config_map("nowhere", _cm("x"))
    assert no_ns.value.status == 404


def test_generate_name_and_selectors(core_v1: client.CoreV1Api) -> None:
    names = [
        core_v1.create_namespaced_config_map(
            "default",
            {"metadata": {"generateName": "gen-", "labels": {"i": str(i), "env": "a" if i % 2 else "b"}}},
        ).metadata.name
        for i in range(4)
    ]
    assert all(n.startswith("gen-") and len(n) == 9 for n in names)
    assert len(set(names)) == 4

    def listed(**kwargs: str) -> set[str]:
        return {c.metadata.name for c in core_v1.list_namespaced_config_map("default", **kwargs).items}

    assert listed(label_selector="env=a") == {names[1], names[3]}
    assert listed(label_selector="env==b,i!=0") == {names[2]}
    assert listed(label_selector="i in (0,3)") == {names[0], names[3]}
    assert listed(label_selector="i notin (0,3),env") == {names[1], names[2]}
    assert listed(label_selector="!env") == set()
    assert listed(label_selector="i>1") == {names[2], names[3]}
    assert listed(field_selector=f"metadata.name={names[2]}") == {names[2]}
    assert listed(field_selector=f"metadata.name!={names[2]},metadata.namespace=default") == set(names) - {
        names[2]
    }
    everywhere = core_v1.list_config_map_for_all_namespaces(label_selector="env=a")
    assert {c.metadata.name for c in everywhere.items} == {names[1], names[3]}
    with pytest.raises(ApiException) as bad:
        core_v1.list_namespaced_config_map("default", label_selector="a in (b")
    assert bad.value.status == 400

    page = core_v1.list_namespaced_config_map("default", limit=3)
    assert len(page.items) == 3
    rest = core_v1.list_namespaced_config_map("default", limit=3, _continue=page.metadata._continue)
    assert {c.metadata.name for c in page.items + rest.items} == set(names)


def test_list_items_carry_no_kind_and_list_has_resource_version(
    api_client: client.ApiClient, core_v1: client.CoreV1Api
) -> None:
    core_v1.create_namespaced_config_map("default", _cm("one"))
    resp = core_v1.list_namespaced_config_map("default", _preload_content=False)
    raw = json.loads(resp.data)
    assert raw["kind"] == "ConfigMapList"
    assert int(raw["metadata"]["resourceVersion"]) >= int(raw["items"][0]["metadata"]["resourceVersion"])
    assert "kind" not in raw["items"][0]
    single = json.loads(core_v1.read_namespaced_config_map("one", "default", _preload_content=False).data)
    assert (single["kind"], single["apiVersion"]) == ("ConfigMap", "v1")


def test_watch_replay_selectors_and_expired(core_v1: client.CoreV1Api, k8s_emulator: K8sEmulator) -> None:
    start_rv = core_v1.list_namespaced_config_map("default").metadata.resource_version
    core_v1.create_namespaced_config_map("default", _cm("w1", {"team": "x"}))
    core_v1.patch_namespaced_config_map("w1", "default", {"data": {"k": "v"}})
    core_v1.patch_namespaced_config_map("w1", "default", {"metadata": {"labels": {"team": "y"}}})
    core_v1.delete_namespaced_config_map("w1", "default")

    def replay(**kwargs: object) -> list[tuple[str, str]]:
        w = watch.Watch()
        return [
            (e["type"], e["object"].metadata.name)
            for e in w.stream(
                core_v1.list_namespaced_config_map,
                "default",
                resource_version=start_rv,
                timeout_seconds=1,
                **kwargs,
            )
        ]

    assert replay() == [("ADDED", "w1"), ("MODIFIED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    # Leaving the selection is a DELETED event for a filtered watcher.
    assert replay(label_selector="team=x") == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]
    assert replay(label_selector="team=y") == [("ADDED", "w1"), ("DELETED", "w1")]

    k8s_emulator.compact()
    with pytest.raises(ApiException) as gone:
        replay()
    assert gone.value.status == 410
    assert "Expired" in str(gone.value.reason)


def test_watch_live_events_bookmarks_and_timeout(
    core_v1: client.CoreV1Api, k8s_emulator: K8sEmulator
) -> None:
    k8s_emulator.send_bookmarks(0.5)  # opt in: the emulator sends none by default
    core_v1.create_namespaced_config_map("default", _cm("before"))
    seen: list[str] = []
    bookmarks: list[str] = []

    def produce() -> None:
        core_v1.create_namespaced_config_map("default", _cm("live"))

    timer = threading.Timer(0.3, produce)
    timer.start()
    try:
        w = watch.Watch()
        stream = w.stream(
            core_v1.list_namespaced_config_map, "default", timeout_seconds=2, allow_watch_bookmarks=True
        )
        for event in stream:
            if event["type"] == "BOOKMARK":
                bookmarks.append(event["raw_object"]["metadata"]["resourceVersion"])
            else:
                seen.append(f"{event['type']} {event['object'].metadata.name}")
    finally:
        timer.join()
    assert seen == ["ADDED before", "ADDED live"]  # initial state, then the live event
    assert bookmarks


def test_watch_sends_no_bookmarks_unless_asked_and_records_who_ended_it(
    core_v1: client.CoreV1Api, k8s_emulator: K8sEmulator
) -> None:
    stream = watch.Watch().stream(
        core_v1.list_namespaced_config_map, "default", timeout_seconds=2, allow_watch_bookmarks=True
    )
    types = [event["type"] for event in stream]
    assert "BOOKMARK" not in types  # real API servers send them rarely: nothing may rely on them
    k8s_emulator.wait_for(lambda: k8s_emulator.open_watches() == 0)
    assert k8s_emulator.watch_ends() == ["server"]  # its timeout


def test_watch_true_spelling_and_raw_stream(api_client: client.ApiClient, k8s_emulator: K8sEmulator) -> None:
    import urllib3

    http = urllib3.PoolManager()
    for spelling in ("true", "True", "1"):
        resp = http.request(
            "GET",
            f"{k8s_emulator.url}/api/v1/namespaces?watch={spelling}&timeoutSeconds=1",
            preload_content=False,
        )
        lines = [json.loads(line) for line in resp.data.splitlines() if line.strip()]
        assert resp.headers["Transfer-Encoding"] == "chunked"
        assert {ln["object"]["metadata"]["name"] for ln in lines} >= {"default", "kube-system"}
        assert all(ln["type"] == "ADDED" for ln in lines)
    http.clear()


def test_services_get_cluster_ip_and_node_port(core_v1: client.CoreV1Api) -> None:
    svc = {
        "metadata": {"name": "etl-svc", "labels": {"app": "ais"}},
        "spec": {"type": "NodePort", "selector": {"app": "ais"}, "ports": [{"port": 8080}]},
    }
    created = core_v1.create_namespaced_service("default", svc)
    assert created.spec.cluster_ip.startswith("10.96.")
    assert 30000 <= created.spec.ports[0].node_port <= 32767
    assert created.spec.ports[0].target_port == 8080
    patched = core_v1.patch_namespaced_service(
        "etl-svc", "default", {"metadata": {"annotations": {"a": "b"}}}
    )
    assert patched.spec.cluster_ip == created.spec.cluster_ip
    assert patched.spec.ports[0].node_port == created.spec.ports[0].node_port
    listed = core_v1.list_namespaced_service("default", label_selector="app=ais").items
    assert [s.metadata.name for s in listed] == ["etl-svc"]
    core_v1.delete_namespaced_service("etl-svc", "default")
    assert core_v1.list_namespaced_service("default", label_selector="app=ais").items == []


def test_nodes_are_complete_and_patchable(core_v1: client.CoreV1Api) -> None:
    nodes = core_v1.list_node(label_selector="airflow-ais-etl/target=true").items
    assert [n.metadata.name for n in nodes] == ["node-a", "node-b"]
    node = nodes[0]
    assert node.status.node_info.boot_id
    assert node.status.node_info.kubelet_version
    assert node.metadata.labels["kubernetes.io/hostname"] == "node-a"
    assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    assert node.status.addresses[0].type == "InternalIP"

    patched = core_v1.patch_node("node-a", {"metadata": {"labels": {"zone": "z1"}}})
    assert patched.metadata.labels["zone"] == "z1"
    assert [n.metadata.name for n in core_v1.list_node(label_selector="zone=z1").items] == ["node-a"]

    created = core_v1.create_node({"metadata": {"name": "node-c", "labels": {"extra": "yes"}}})
    assert created.status.node_info.boot_id
    assert any(c.type == "Ready" and c.status == "True" for c in created.status.conditions)
    core_v1.delete_node("node-c")
    assert [n.metadata.name for n in core_v1.list_node().items] == ["node-a", "node-b"]


def test_secrets_and_events(core_v1: client.CoreV1Api) -> None:
    secret = core_v1.create_namespaced_secret(
        "default", {"metadata": {"name": "s1"}, "stringData": {"token": "abc"}}
    )
    assert secret.data == {"token": "YWJj"}
    assert secret.type == "Opaque"
    event = {
        "metadata": {"name": "ev1"},
        "involvedObject": {"kind": "Pod", "name": "somepod", "namespace": "default"},
        "reason": "Testing",
        "message": "hello",
        "type": "Normal",
    }
    core_v1.create_namespaced_event("default", event)
    events = core_v1.list_namespaced_event("default", field_selector="involvedObject.name=somepod").items
    assert [(e.reason, e.message) for e in events] == [("Testing", "hello")]


def test_namespace_lifecycle(core_v1: client.CoreV1Api) -> None:
    ns = core_v1.create_namespace({"metadata": {"name": "team-a"}})
    assert ns.status.phase == "Active"
    assert ns.metadata.labels["kubernetes.io/metadata.name"] == "team-a"
    core_v1.create_namespaced_config_map("team-a", _cm("inside"))
    core_v1.delete_namespace("team-a")
    with pytest.raises(ApiException) as gone:
        core_v1.read_namespace("team-a")
    assert gone.value.status == 404
    assert core_v1.list_config_map_for_all_namespaces(field_selector="metadata.namespace=team-a").items == []


def test_received_objects_are_recorded(core_v1: client.CoreV1Api, k8s_emulator: K8sEmulator) -> None:
    core_v1.create_namespaced_config_map("default", _cm("rec", a="1"))
    cm = core_v1.read_namespaced_config_map("rec", "default")
    cm.data = {"a": "2"}
    core_v1.replace_namespaced_config_map("rec", "default", cm)
    received = k8s_emulator.received_objects("configmaps")
    assert [r["data"] for r in received] == [{"a": "1"}, {"a": "2"}]
    assert k8s_emulator.received_objects("configmaps", verb="create")[0]["metadata"]["name"] == "rec"
    assert "uid" not in received[0]["metadata"]
