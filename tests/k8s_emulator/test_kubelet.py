"""The process kubelet through the official client: scheduling, running, probes, logs, faults."""

from __future__ import annotations

import base64
import json
import signal
import textwrap
import urllib.request
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.k8s_emulator.api import Request
from tests.k8s_emulator.helpers import (
    condition,
    events_for,
    http_pod,
    is_ready,
    python_pod,
    wait_for,
    wait_gone,
    wait_ready,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.k8s_emulator.emulator import K8sEmulator

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]  # every test runs the emulator


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _state(core: client.CoreV1Api, name: str) -> Any:
    """Return the first container's ``V1ContainerState`` (None before the kubelet reported one)."""
    statuses = core.read_namespaced_pod(name, "default").status.container_statuses
    return statuses[0].state if statuses else None


def test_http_pod_becomes_ready_serves_logs_metrics_and_deletes_gracefully(
    core_v1: client.CoreV1Api, api_client: client.ApiClient, k8s_emulator: K8sEmulator
) -> None:
    created = core_v1.create_namespaced_pod("default", http_pod("web"))
    assert created.status.phase == "Pending"
    pod = wait_ready(core_v1, "web")
    assert pod.status.phase == "Running"
    assert pod.spec.node_name in ("node-a", "node-b")
    assert pod.status.pod_ip.startswith("127.")
    assert pod.status.pod_ip != "127.0.0.1"
    assert pod.status.pod_ips[0].ip == pod.status.pod_ip
    assert pod.status.host_ip
    assert {c.type for c in pod.status.conditions} >= {
        "PodScheduled",
        "Initialized",
        "ContainersReady",
        "Ready",
    }
    status = pod.status.container_statuses[0]
    assert status.ready
    assert status.started
    assert status.state.running.started_at
    assert status.container_id.startswith("containerd://")

    with urllib.request.urlopen(f"http://{pod.status.pod_ip}:8080/") as resp:
        assert resp.status == 200

    logs = core_v1.read_namespaced_pod_log("web", "default", _preload_content=False).data.decode()
    assert f"Serving HTTP on {pod.status.pod_ip} port 8080" in logs
    stamped = core_v1.read_namespaced_pod_log(
        "web", "default", timestamps=True, tail_lines=1, _preload_content=False
    ).data.decode()
    assert len(stamped.splitlines()) == 1
    assert stamped[:4].isdigit()
    assert "Z " in stamped
    assert (
        core_v1.read_namespaced_pod_log(
            "web", "default", since_seconds=3600, _preload_content=False
        ).data.decode()
        == logs
    )

    metrics = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", "default", "pods", "web"
    )
    usage = metrics["containers"][0]["usage"]
    assert usage["cpu"].endswith("n")
    assert int(usage["cpu"][:-1]) >= 0
    assert usage["memory"].endswith("Ki")
    assert int(usage["memory"][:-2]) > 1000
    listed = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", "default", "pods"
    )
    assert [m["metadata"]["name"] for m in listed["items"]] == ["web"]
    node_metrics = client.CustomObjectsApi(api_client).get_cluster_custom_object(
        "metrics.k8s.io", "v1beta1", "nodes", pod.spec.node_name
    )
    assert int(node_metrics["usage"]["memory"][:-2]) > 0

    pids = k8s_emulator.pod_pids("default", "web")
    assert pids
    assert all(_alive(p) for p in pids)
    deleting = core_v1.delete_namespaced_pod("web", "default", grace_period_seconds=5)
    assert deleting.metadata.deletion_timestamp is not None
    assert deleting.metadata.deletion_grace_period_seconds == 5
    wait_gone(core_v1, "web")
    assert not any(_alive(p) for p in pids)
    reasons = [reason for _type, reason, _msg in events_for(core_v1, "web")]
    assert {"Scheduled", "Pulled", "Created", "Started", "Killing"} <= set(reasons)


def test_graceful_delete_sends_sigterm(core_v1: client.CoreV1Api, tmp_path: Path) -> None:
    marker = tmp_path / "terminated"
    code = textwrap.dedent(
        f"""
        import pathlib, signal, sys, time
        def stop(signum, frame):
            pathlib.Path({str(marker)!r}).write_text(str(signum))
            sys.exit(0)
        signal.signal(signal.SIGTERM, stop)
        print("waiting", flush=True)
        time.sleep(60)
        """
    )
    core_v1.create_namespaced_pod("default", python_pod("term", code))
    wait_ready(core_v1, "term")
    wait_for(
        lambda: (
            "waiting"
            in core_v1.read_namespaced_pod_log("term", "default", _preload_content=False).data.decode()
        )
    )
    core_v1.delete_namespaced_pod("term", "default")
    wait_gone(core_v1, "term")
    assert marker.read_text() == str(int(signal.SIGTERM))


def test_grace_zero_deletes_immediately(core_v1: client.CoreV1Api, k8s_emulator: K8sEmulator) -> None:
    core_v1.create_namespaced_pod("default", python_pod("quick", "import time; time.sleep(60)"))
    wait_ready(core_v1, "quick")
    pids = k8s_emulator.pod_pids("default", "quick")
    core_v1.delete_namespaced_pod("quick", "default", grace_period_seconds=0)
    with pytest.raises(ApiException) as gone:
        core_v1.read_namespaced_pod("quick", "default")
    assert gone.value.status == 404
    wait_for(lambda: not any(_alive(p) for p in pids))


def test_logs_follow_until_the_container_exits(core_v1: client.CoreV1Api) -> None:
    code = "import time\nfor i in range(3):\n    print('line', i, flush=True)\n    time.sleep(0.3)\n"
    core_v1.create_namespaced_pod("default", python_pod("printer", code))
    wait_for(lambda: core_v1.read_namespaced_pod("printer", "default").status.phase != "Pending")
    resp = core_v1.read_namespaced_pod_log("printer", "default", follow=True, _preload_content=False)
    text = b"".join(resp.stream(64)).decode()
    assert text.splitlines() == ["line 0", "line 1", "line 2"]
    pod = wait_for(
        lambda: (p := core_v1.read_namespaced_pod("printer", "default")).status.phase == "Succeeded" and p
    )
    term = pod.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (0, "Completed")


def test_exit_code_fails_a_never_pod_and_restarts_an_always_pod(core_v1: client.CoreV1Api) -> None:
    core_v1.create_namespaced_pod("default", python_pod("fails", "import sys; sys.exit(3)"))
    pod = wait_for(
        lambda: (p := core_v1.read_namespaced_pod("fails", "default")).status.phase == "Failed" and p
    )
    term = pod.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (3, "Error")

    core_v1.create_namespaced_pod("default", python_pod("loops", "import sys; sys.exit(1)", restart="Always"))
    seen_backoff = []
    w = watch.Watch()
    for event in w.stream(
        core_v1.list_namespaced_pod, "default", field_selector="metadata.name=loops", timeout_seconds=15
    ):
        statuses = event["object"].status.container_statuses or []
        if statuses and statuses[0].state.waiting and statuses[0].state.waiting.reason == "CrashLoopBackOff":
            seen_backoff.append(statuses[0].restart_count)
        if statuses and statuses[0].restart_count >= 2 and seen_backoff:
            w.stop()
    pod = core_v1.read_namespaced_pod("loops", "default")
    status = pod.status.container_statuses[0]
    assert status.restart_count >= 2
    assert status.last_state.terminated.exit_code == 1
    assert pod.status.phase == "Running"
    assert seen_backoff
    assert any(reason == "BackOff" for _t, reason, _m in events_for(core_v1, "loops"))


def test_kill_container_hook(core_v1: client.CoreV1Api, k8s_emulator: K8sEmulator) -> None:
    core_v1.create_namespaced_pod("default", python_pod("victim", "import time; time.sleep(60)"))
    wait_ready(core_v1, "victim")
    pid = k8s_emulator.kill_container("default", "victim", signal.SIGKILL)
    pod = wait_for(
        lambda: (p := core_v1.read_namespaced_pod("victim", "default")).status.phase == "Failed" and p
    )
    term = pod.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.signal) == (137, 9)
    assert not _alive(pid)

    core_v1.create_namespaced_pod(
        "default", python_pod("phoenix", "import time; time.sleep(60)", restart="Always")
    )
    wait_ready(core_v1, "phoenix")
    k8s_emulator.kill_container("default", "phoenix")
    pod = wait_for(
        lambda: (
            (p := core_v1.read_namespaced_pod("phoenix", "default"))
            .status.container_statuses[0]
            .restart_count
            == 1
            and is_ready(p)
            and p
        )
    )
    assert pod.status.container_statuses[0].last_state.terminated.exit_code == 137


def test_unknown_image_and_fail_image_hook_give_err_image_pull(
    core_v1: client.CoreV1Api, k8s_emulator: K8sEmulator
) -> None:
    unknown = {
        "metadata": {"name": "unknown"},
        "spec": {"containers": [{"name": "c", "image": "registry.example/none:1"}]},
    }
    core_v1.create_namespaced_pod("default", unknown)
    waiting = wait_for(
        lambda: (
            (s := _state(core_v1, "unknown"))
            and s.waiting
            and s.waiting.reason == "ErrImagePull"
            and s.waiting
        )
    )
    assert "cannot run locally" in waiting.message
    assert core_v1.read_namespaced_pod("unknown", "default").status.phase == "Pending"
    wait_for(
        lambda: (s := _state(core_v1, "unknown")) and s.waiting and s.waiting.reason == "ImagePullBackOff"
    )
    failed = [m for t, reason, m in events_for(core_v1, "unknown") if reason == "Failed" and t == "Warning"]
    assert any('Failed to pull image "registry.example/none:1"' in m for m in failed)

    k8s_emulator.fail_image("python:3.11-slim")
    core_v1.create_namespaced_pod("default", python_pod("blocked", "print('hi')"))
    wait_for(lambda: (s := _state(core_v1, "blocked")) and s.waiting and s.waiting.reason == "ErrImagePull")
    k8s_emulator.fail_image("python:3.11-slim", failing=False)
    wait_for(lambda: core_v1.read_namespaced_pod("blocked", "default").status.phase == "Succeeded")


def test_unschedulable_until_a_matching_node_appears(
    core_v1: client.CoreV1Api, k8s_emulator: K8sEmulator
) -> None:
    pod = python_pod("picky", "import time; time.sleep(60)", nodeSelector={"disk": "ssd"})
    core_v1.create_namespaced_pod("default", pod)
    cond = wait_for(lambda: condition(core_v1.read_namespaced_pod("picky", "default"), "PodScheduled"))
    assert (cond.status, cond.reason) == ("False", "Unschedulable")
    assert cond.message.startswith("0/2 nodes are available")
    assert any(
        reason == "FailedScheduling" and t == "Warning" for t, reason, _m in events_for(core_v1, "picky")
    )
    k8s_emulator.add_node("node-ssd", {"disk": "ssd"})
    scheduled = wait_ready(core_v1, "picky")
    assert scheduled.spec.node_name == "node-ssd"


def test_node_affinity_on_hostname(core_v1: client.CoreV1Api) -> None:
    def affinity(op: str, node: str) -> dict[str, object]:
        term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": op, "values": [node]}]}
        return {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
        }

    for i in range(2):
        core_v1.create_namespaced_pod(
            "default",
            python_pod(f"on-b-{i}", "import time; time.sleep(60)", affinity=affinity("In", "node-b")),
        )
    core_v1.create_namespaced_pod(
        "default", python_pod("not-b", "import time; time.sleep(60)", affinity=affinity("NotIn", "node-b"))
    )
    for name, node in (("on-b-0", "node-b"), ("on-b-1", "node-b"), ("not-b", "node-a")):
        assert wait_ready(core_v1, name).spec.node_name == node
    core_v1.create_namespaced_pod(
        "default", python_pod("nowhere", "print()", affinity=affinity("In", "node-z"))
    )
    cond = wait_for(lambda: condition(core_v1.read_namespaced_pod("nowhere", "default"), "PodScheduled"))
    assert cond.reason == "Unschedulable"
    assert "didn't match Pod's node affinity/selector" in cond.message
    on_b = core_v1.list_namespaced_pod("default", field_selector="spec.nodeName=node-b").items
    assert sorted(p.metadata.name for p in on_b) == ["on-b-0", "on-b-1"]
    running = core_v1.list_namespaced_pod("default", field_selector="status.phase=Running").items
    assert len(running) == 3


def test_fail_probe_hook_flips_ready(core_v1: client.CoreV1Api, k8s_emulator: K8sEmulator) -> None:
    core_v1.create_namespaced_pod("default", http_pod("probed", failure_threshold=1))
    wait_ready(core_v1, "probed")
    k8s_emulator.fail_probe("default", "probed")
    pod = wait_for(lambda: (p := core_v1.read_namespaced_pod("probed", "default")) and not is_ready(p) and p)
    assert condition(pod, "ContainersReady").status == "False"
    assert any(reason == "Unhealthy" for _t, reason, _m in events_for(core_v1, "probed"))
    k8s_emulator.fail_probe("default", "probed", failing=False)
    wait_ready(core_v1, "probed")


def test_node_not_ready_and_node_removal(core_v1: client.CoreV1Api, k8s_emulator: K8sEmulator) -> None:
    pod = python_pod("pinned", "import time; time.sleep(60)", nodeName="node-a")
    core_v1.create_namespaced_pod("default", pod)
    wait_ready(core_v1, "pinned")
    pids = k8s_emulator.pod_pids("default", "pinned")

    k8s_emulator.set_node_ready("node-a", False)
    node = core_v1.read_node("node-a")
    assert next(c for c in node.status.conditions if c.type == "Ready").status == "Unknown"
    wait_for(lambda: not is_ready(core_v1.read_namespaced_pod("pinned", "default")))
    core_v1.create_namespaced_pod("default", python_pod("elsewhere", "import time; time.sleep(60)"))
    assert wait_ready(core_v1, "elsewhere").spec.node_name == "node-b"
    k8s_emulator.set_node_ready("node-a", True)
    wait_ready(core_v1, "pinned")

    k8s_emulator.remove_node("node-a")
    with pytest.raises(ApiException) as gone:
        core_v1.read_namespaced_pod("pinned", "default")
    assert gone.value.status == 404
    assert not any(_alive(p) for p in pids)
    assert [n.metadata.name for n in core_v1.list_node().items] == ["node-b"]
    assert is_ready(core_v1.read_namespaced_pod("elsewhere", "default"))


def test_init_containers_share_empty_dirs_and_failures_show(core_v1: client.CoreV1Api) -> None:
    volume = [{"name": "work", "emptyDir": {}}]
    mount = [{"name": "work", "mountPath": "/shared"}]
    init = {
        "name": "prep",
        "image": "python:3.11-slim",
        "command": ["python", "-c", "open('/shared/msg', 'w').write('from init'); print('prepared')"],
        "volumeMounts": mount,
    }
    main = {
        "name": "main",
        "image": "python:3.11-slim",
        "command": ["python", "-c", "print(open('/shared/msg').read())"],
        "volumeMounts": mount,
    }
    pod: dict[str, Any] = {
        "metadata": {"name": "inits"},
        "spec": {"restartPolicy": "Never", "initContainers": [init], "containers": [main], "volumes": volume},
    }
    core_v1.create_namespaced_pod("default", pod)
    done = wait_for(
        lambda: (p := core_v1.read_namespaced_pod("inits", "default")).status.phase == "Succeeded" and p
    )
    assert done.status.init_container_statuses[0].state.terminated.reason == "Completed"
    assert (
        core_v1.read_namespaced_pod_log(
            "inits", "default", container="main", _preload_content=False
        ).data.decode()
        == "from init\n"
    )
    assert (
        core_v1.read_namespaced_pod_log(
            "inits", "default", container="prep", _preload_content=False
        ).data.decode()
        == "prepared\n"
    )

    bad_init = dict(init, command=["python", "-c", "import sys; print('broken'); sys.exit(4)"])
    core_v1.create_namespaced_pod(
        "default", {"metadata": {"name": "badinit"}, "spec": {**pod["spec"], "initContainers": [bad_init]}}
    )
    failed = wait_for(
        lambda: (p := core_v1.read_namespaced_pod("badinit", "default")).status.phase == "Failed" and p
    )
    term = failed.status.init_container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (4, "Error")
    assert condition(failed, "Initialized").status == "False"
    assert failed.status.container_statuses[0].state.waiting.reason == "PodInitializing"


def test_close_leaves_no_process(tmp_path: Path) -> None:
    from tests.k8s_emulator.emulator import K8sEmulator
    from tests.k8s_emulator.helpers import python_pod as make

    emulator = K8sEmulator(tmp_path / "em", backoff=(0.5, 5.0), probe_period_max=1.0)
    try:
        emulator.add_node("n1")
        body = make("sleepy", "import time; time.sleep(120)")
        emulator.api.handle(_post("/api/v1/namespaces/default/pods", body))
        emulator.wait_for(lambda: emulator.kubelet.worker("default", "sleepy").local is not None)
        emulator.wait_for(lambda: len(emulator.pod_pids("default", "sleepy")) == 2)
        pids = emulator.pod_pids("default", "sleepy")
        port = emulator.port
    finally:
        emulator.close()
    assert not any(_alive(p) for p in pids)
    assert emulator.stray_processes() == []
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # the port is free again


def _post(path: str, body: dict[str, Any]) -> Request:
    return Request("POST", path, {}, "application/json", json.dumps(body).encode())


def test_probe_honours_initial_delay(k8s_emulator: K8sEmulator, core_v1: client.CoreV1Api) -> None:
    pod = http_pod("delayed")
    # long enough for the server to be up under a loaded machine (parallel tests): no probe may fail
    pod["spec"]["containers"][0]["readinessProbe"]["initialDelaySeconds"] = 5
    core_v1.create_namespaced_pod("default", pod)
    ready = wait_ready(core_v1, "delayed")
    unhealthy = [r for _t, r, _m in events_for(core_v1, "delayed") if r == "Unhealthy"]
    assert unhealthy == []  # the server was up long before the first probe
    started_at = ready.status.container_statuses[0].state.running.started_at
    became_ready = condition(ready, "Ready").last_transition_time
    assert (became_ready - started_at).total_seconds() >= 1  # timestamps have whole-second precision


def test_secret_api_folds_string_data_lists_and_deletes(core_v1: client.CoreV1Api) -> None:
    body = {"metadata": {"name": "s0", "labels": {"k": "v"}}, "stringData": {"token": "abc"}}
    created = core_v1.create_namespaced_secret("default", body)
    assert (created.type, created.data, created.string_data) == ("Opaque", {"token": "YWJj"}, None)
    assert base64.b64decode(core_v1.read_namespaced_secret("s0", "default").data["token"]) == b"abc"
    assert [
        s.metadata.name for s in core_v1.list_namespaced_secret("default", label_selector="k=v").items
    ] == ["s0"]
    core_v1.delete_namespaced_secret("s0", "default")
    with pytest.raises(ApiException) as err:
        core_v1.read_namespaced_secret("s0", "default")
    assert err.value.status == 404


def test_secret_and_config_map_key_refs_resolve_in_env(core_v1: client.CoreV1Api) -> None:
    """Key refs reach the process (Secret data base64-decoded) and a later ``$(VAR)`` sees them."""
    core_v1.create_namespaced_secret(
        "default", {"metadata": {"name": "s1"}, "data": {"a": base64.b64encode(b"from-data").decode()}}
    )
    core_v1.create_namespaced_secret(
        "default", {"metadata": {"name": "s2"}, "stringData": {"b": "from-string"}}
    )
    core_v1.create_namespaced_config_map("default", {"metadata": {"name": "c1"}, "data": {"c": "from-cm"}})
    pod = python_pod("refs", "import os; print(os.environ['ALL'], 'D' in os.environ)")
    pod["spec"]["containers"][0]["env"] = [
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "a"}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s2", "key": "b"}}},
        {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "c1", "key": "c"}}},
        {"name": "D", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "x", "optional": True}}},
        {"name": "ALL", "value": "$(A)/$(B)/$(C)"},
    ]
    core_v1.create_namespaced_pod("default", pod)
    wait_for(lambda: core_v1.read_namespaced_pod("refs", "default").status.phase == "Succeeded")
    log = core_v1.read_namespaced_pod_log("refs", "default", _preload_content=False).data.decode()
    assert log.strip() == "from-data/from-string/from-cm False"


def test_missing_secret_keeps_the_container_from_starting(core_v1: client.CoreV1Api) -> None:
    pod = python_pod("norefs", "print('started')")
    pod["spec"]["containers"][0]["env"] = [
        {"name": "A", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "a"}}}
    ]
    core_v1.create_namespaced_pod("default", pod)
    # ContainerCreating comes first (no message); wait for the failed start that names the Secret.
    waiting = wait_for(
        lambda: (
            (state := _state(core_v1, "norefs")) and state.waiting and state.waiting.message and state.waiting
        )
    )
    assert "'absent'" in (waiting.message or "")
    assert waiting.reason == "CreateContainerConfigError"
    failed = [m for t, r, m in events_for(core_v1, "norefs") if (t, r) == ("Warning", "Failed")]
    assert any(m.startswith("Error: container 'main': secret 'absent'") for m in failed)
    assert core_v1.read_namespaced_pod("norefs", "default").status.phase == "Pending"
