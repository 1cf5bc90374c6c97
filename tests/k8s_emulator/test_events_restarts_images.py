"""Events, container restarts and image pulls of the emulator, through the official client.

The shared emulator restarts with a back-off of 0.5 s doubling up to 5 s (real kubelets: 10 s up
to 5 min) and preloads only the project's runtime images on its nodes.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import pytest
from kubernetes import watch

from tests.k8s_emulator.helpers import condition, events_for, python_pod, wait_for, wait_ready

if TYPE_CHECKING:
    from kubernetes import client

    from tests.k8s_emulator.emulator import K8sEmulator

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]

RUNTIME = "airflow-ais-etl/runtime-python:3.11v2"
SLEEP = "import time; time.sleep(60)"


def _pod(core: client.CoreV1Api, name: str) -> Any:
    return core.read_namespaced_pod(name, "default")


def _waiting(core: client.CoreV1Api, name: str, reason: str) -> Any:
    """Wait until the pod's first container waits with ``reason``; return its ``waiting`` state."""

    def check() -> Any:
        statuses = _pod(core, name).status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return waiting if waiting is not None and waiting.reason == reason else None

    return wait_for(check)


def _phase(core: client.CoreV1Api, name: str, phase: str) -> Any:
    return wait_for(lambda: (p := _pod(core, name)).status.phase == phase and p)


def _restarted(core: client.CoreV1Api, name: str) -> Any:
    """Return the first container's status once it restarted at least once (else None)."""
    status = _pod(core, name).status.container_statuses[0]
    return status if status.restart_count >= 1 else None


def _on(node: str) -> dict[str, Any]:
    return {"nodeSelector": {"kubernetes.io/hostname": node}}


def test_failed_scheduling_events_have_the_real_shape_and_can_be_watched(
    core_v1: client.CoreV1Api, k8s_emulator: K8sEmulator
) -> None:
    pod = python_pod("greedy", SLEEP)
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "3", "memory": "64Mi"}}
    created = core_v1.create_namespaced_pod("default", pod)
    cond = wait_for(lambda: condition(_pod(core_v1, "greedy"), "PodScheduled"))
    assert (cond.status, cond.reason) == ("False", "Unschedulable")
    assert cond.message == (
        "0/2 nodes are available: 2 Insufficient cpu. "
        "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
    )
    selector = "involvedObject.name=greedy,reason=FailedScheduling"
    listed = core_v1.list_namespaced_event("default", field_selector=selector)
    (event,) = listed.items
    assert (event.type, event.message) == ("Warning", cond.message)
    assert event.source.component == "default-scheduler"
    assert event.involved_object.kind == "Pod"
    assert (event.involved_object.name, event.involved_object.namespace) == ("greedy", "default")
    assert event.involved_object.uid == created.metadata.uid
    assert event.count == 1
    assert event.first_timestamp is not None
    assert event.last_timestamp >= event.first_timestamp
    assert not core_v1.list_namespaced_event("default", field_selector=selector + ",type=Normal").items

    seen: list[tuple[str, str, str]] = []
    w = watch.Watch()
    k8s_emulator.add_node("node-big", {}, allocatable={"cpu": "4"})
    for change in w.stream(
        core_v1.list_namespaced_event,
        "default",
        field_selector="involvedObject.name=greedy",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=15,
    ):
        ev = change["object"]
        seen.append((change["type"], ev.reason, ev.source.component))
        if ev.reason == "Started":
            w.stop()
    assert ("ADDED", "Scheduled", "default-scheduler") in seen
    assert ("ADDED", "Started", "kubelet") in seen
    ready = wait_ready(core_v1, "greedy")
    assert (ready.spec.node_name, ready.status.qos_class) == ("node-big", "Burstable")
    scheduled = [m for _t, r, m in events_for(core_v1, "greedy") if r == "Scheduled"]
    assert scheduled == ["Successfully assigned default/greedy to node-big"]


def test_node_resources_are_shared_by_bound_pods_and_taints_need_tolerations(
    core_v1: client.CoreV1Api, k8s_emulator: K8sEmulator
) -> None:
    k8s_emulator.add_node("small", {"pool": "small"}, allocatable={"cpu": "1"})
    half = {"requests": {"cpu": "600m"}}
    for name in ("first", "second"):
        pod = python_pod(name, SLEEP, nodeSelector={"pool": "small"})
        pod["spec"]["containers"][0]["resources"] = half
        core_v1.create_namespaced_pod("default", pod)
        if name == "first":
            wait_ready(core_v1, name)
    cond = wait_for(lambda: condition(_pod(core_v1, "second"), "PodScheduled"))
    assert cond.reason == "Unschedulable"
    assert cond.message.startswith(
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."
    )
    core_v1.delete_namespaced_pod("first", "default", grace_period_seconds=0)
    assert wait_ready(core_v1, "second").spec.node_name == "small"

    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    k8s_emulator.add_node("gpu", {"pool": "gpu"}, taints=[taint])
    core_v1.create_namespaced_pod("default", python_pod("untolerated", SLEEP, nodeSelector={"pool": "gpu"}))
    cond = wait_for(lambda: condition(_pod(core_v1, "untolerated"), "PodScheduled"))
    assert "1 node(s) had untolerated taint {dedicated: gpu}" in cond.message
    tolerant = python_pod(
        "tolerant",
        SLEEP,
        nodeSelector={"pool": "gpu"},
        tolerations=[{"key": "dedicated", "operator": "Exists"}],
    )
    core_v1.create_namespaced_pod("default", tolerant)
    assert wait_ready(core_v1, "tolerant").spec.node_name == "gpu"


def test_restart_policies_and_crash_loop_back_off_doubling(core_v1: client.CoreV1Api) -> None:
    core_v1.create_namespaced_pod("default", python_pod("done", "print('ok')", restart="OnFailure"))
    core_v1.create_namespaced_pod(
        "default", python_pod("retry", "import sys; sys.exit(2)", restart="OnFailure")
    )
    core_v1.create_namespaced_pod("default", python_pod("again", "print('ok')", restart="Always"))
    done = _phase(core_v1, "done", "Succeeded")
    assert done.status.container_statuses[0].restart_count == 0
    for name, exit_code, reason in (("retry", 2, "Error"), ("again", 0, "Completed")):
        status = wait_for(functools.partial(_restarted, core_v1, name))
        assert (status.last_state.terminated.exit_code, status.last_state.terminated.reason) == (
            exit_code,
            reason,
        )
        assert _pod(core_v1, name).status.phase in ("Running", "Pending")

    core_v1.create_namespaced_pod("default", python_pod("loop", "import sys; sys.exit(1)", restart="Always"))
    back_offs: list[str] = []
    w = watch.Watch()
    for change in w.stream(
        core_v1.list_namespaced_pod, "default", field_selector="metadata.name=loop", timeout_seconds=30
    ):
        statuses = change["object"].status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        if waiting is not None and waiting.reason == "CrashLoopBackOff":
            delay = waiting.message.split(" restarting")[0]
            if not back_offs or back_offs[-1] != delay:
                back_offs.append(delay)
        if len(back_offs) >= 3:
            w.stop()
    assert back_offs[:3] == ["back-off 500ms", "back-off 1s", "back-off 2s"]
    status = _pod(core_v1, "loop").status.container_statuses[0]
    assert status.restart_count >= 3
    assert status.last_state.terminated.exit_code == 1
    events = core_v1.list_namespaced_event("default", field_selector="involvedObject.name=loop").items
    counts = {e.reason: e.count for e in events if e.reason in ("BackOff", "Started")}
    assert counts["BackOff"] >= 2  # one aggregated event, as the kubelet's recorder does
    assert counts["Started"] >= 3
    back_off = next(e for e in events if e.reason == "BackOff")
    assert back_off.type == "Warning"
    assert back_off.message.startswith("Back-off restarting failed container main in pod loop_default(")
    assert back_off.involved_object.field_path == "spec.containers{main}"


def test_image_pull_policies_against_present_and_pullable_images(
    core_v1: client.CoreV1Api, k8s_emulator: K8sEmulator
) -> None:
    image = "python:3.11-slim"  # absent from the nodes at first, served by the registry
    never = python_pod("never", "print('hi')", image=image, **_on("node-a"))
    never["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    core_v1.create_namespaced_pod("default", never)
    waiting = _waiting(core_v1, "never", "ErrImageNeverPull")
    assert waiting.message == f'Container image "{image}" is not present with pull policy of Never'
    assert _pod(core_v1, "never").status.phase == "Pending"
    warnings = [(r, m) for t, r, m in events_for(core_v1, "never") if t == "Warning"]
    assert ("ErrImageNeverPull", waiting.message) in warnings
    assert ("Failed", "Error: ErrImageNeverPull") in warnings

    core_v1.create_namespaced_pod("default", python_pod("pulls", "print('hi')", image=image, **_on("node-a")))
    _phase(core_v1, "pulls", "Succeeded")
    pulled = [m for _t, r, m in events_for(core_v1, "pulls") if r in ("Pulling", "Pulled")]
    assert pulled[0] == f'Pulling image "{image}"'
    assert pulled[1].startswith(f'Successfully pulled image "{image}" in ')
    assert k8s_emulator.image_present("node-a", image)
    assert not k8s_emulator.image_present("node-b", image)
    _phase(core_v1, "never", "Succeeded")  # the Never pod's retry finds the image pulled meanwhile

    core_v1.create_namespaced_pod(
        "default", python_pod("cached", "print('hi')", image=image, **_on("node-a"))
    )
    _phase(core_v1, "cached", "Succeeded")
    reasons = [(r, m) for _t, r, m in events_for(core_v1, "cached")]
    assert ("Pulled", f'Container image "{image}" already present on machine') in reasons
    assert not [r for r, _m in reasons if r == "Pulling"]

    k8s_emulator.refuse_image(RUNTIME)  # the nodes keep it
    always = python_pod("always", "print('hi')", image=RUNTIME)
    always["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    core_v1.create_namespaced_pod("default", always)
    core_v1.create_namespaced_pod("default", python_pod("present", "print('hi')", image=RUNTIME))
    _phase(core_v1, "present", "Succeeded")
    # ErrImagePull lasts half a second per try; its back-off (the state after it) lasts longer
    _waiting(core_v1, "always", "ImagePullBackOff")
    events = [(t, r, m) for t, r, m in events_for(core_v1, "always")]
    refused = f'Failed to pull image "{RUNTIME}": rpc error: code = NotFound desc = failed to pull and unpack'
    assert any(t == "Warning" and r == "Failed" and m.startswith(refused) for t, r, m in events)
    assert ("Warning", "Failed", "Error: ErrImagePull") in events
    assert ("Normal", "BackOff", f'Back-off pulling image "{RUNTIME}"') in events
    assert ("Warning", "Failed", "Error: ImagePullBackOff") in events
    k8s_emulator.refuse_image(RUNTIME, refusing=False)
    _phase(core_v1, "always", "Succeeded")

    repull = python_pod("repull", "print('hi')", image=image, restart="Always")
    repull["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    core_v1.create_namespaced_pod("default", repull)
    wait_for(lambda: _pod(core_v1, "repull").status.container_statuses[0].restart_count >= 2)
    pulls = core_v1.list_namespaced_event(
        "default", field_selector="involvedObject.name=repull,reason=Pulling"
    ).items
    assert pulls[0].count >= 3  # Always pulls before every start
