"""The emulator's pure kubelet and scheduler decisions: image pull steps, node fitting, messages."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.k8s_emulator.images import ImageCatalog, PullStep, pull_step
from tests.k8s_emulator.objects import node_object
from tests.k8s_emulator.scheduler import node_fits, pick_node, pod_requests

if TYPE_CHECKING:
    from pathlib import Path

RUNTIME = "airflow-ais-etl/runtime-python:3.11v2"


@pytest.mark.parametrize(
    ("policy", "present", "pullable", "step"),
    [
        ("Never", True, False, PullStep.USE_PRESENT),
        ("Never", False, True, PullStep.NEVER_PULL),
        ("IfNotPresent", True, False, PullStep.USE_PRESENT),
        ("IfNotPresent", False, True, PullStep.PULL),
        ("IfNotPresent", False, False, PullStep.PULL_FAILS),
        ("Always", True, True, PullStep.PULL),
        ("Always", True, False, PullStep.PULL_FAILS),
        ("Always", False, False, PullStep.PULL_FAILS),
    ],
)
def test_pull_policy_decides_what_happens_to_an_image(
    policy: str, present: bool, pullable: bool, step: PullStep
) -> None:
    assert pull_step(policy, present=present, pullable=pullable) is step


def test_image_catalog_defaults_pulls_removals_and_refusals() -> None:
    images = ImageCatalog()
    assert images.present("node-a", RUNTIME)
    assert not images.present("node-a", "busybox:1.36")
    assert images.pullable("busybox:1.36")
    images.pulled("node-a", "busybox:1.36")
    assert images.present("node-a", "busybox:1.36")
    assert not images.present("node-b", "busybox:1.36")
    images.remove(RUNTIME)
    images.remove("busybox:1.36")
    assert not images.present("node-a", RUNTIME)
    assert not images.present("node-a", "busybox:1.36")
    images.set_pullable(RUNTIME, False)
    assert not images.pullable(RUNTIME)
    images.reset()
    assert images.present("node-a", RUNTIME)
    assert images.pullable(RUNTIME)
    configured = ImageCatalog(preloaded={"busybox:1.36"}, registry=lambda image: image.startswith("ok/"))
    assert configured.present("node-a", "busybox:1.36")
    assert not configured.present("node-a", RUNTIME)
    assert configured.pullable("ok/x:1")
    assert not configured.pullable("other/x:1")


def _pod(**spec: Any) -> dict[str, Any]:
    containers = spec.pop("containers", [{"name": "main", "image": "x"}])
    return {"metadata": {"name": "p"}, "spec": {"containers": containers, **spec}}


def _node(name: str, *, taints: list[dict[str, str]] | None = None, **allocatable: str) -> dict[str, Any]:
    node = node_object(name, {}, ready=True, ip="127.0.0.1", boot_id="b", now=time.time())
    node["status"]["allocatable"].update(allocatable)
    if taints:
        node["spec"]["taints"] = taints
    return node


def _requesting(**requests: str) -> dict[str, Any]:
    return {"name": "main", "image": "x", "resources": {"requests": requests}}


def test_pod_requests_sum_containers_and_sidecars_or_take_the_largest_init() -> None:
    pod = _pod(
        containers=[_requesting(cpu="100m", memory="64Mi"), _requesting(cpu="250m")],
        initContainers=[
            {**_requesting(cpu="2"), "name": "deps"},
            {**_requesting(memory="64Mi"), "name": "gateway", "restartPolicy": "Always"},
        ],
    )
    assert pod_requests(pod) == {"cpu": Decimal("2"), "memory": Decimal(128 * 2**20)}


def test_requests_beyond_what_every_node_can_allocate_are_insufficient() -> None:
    nodes = [_node("a", cpu="1"), _node("b", cpu="1")]
    pod = _pod(containers=[_requesting(cpu="1500m", memory="1Gi")])
    chosen, message = pick_node(pod, nodes, {})
    assert chosen is None
    assert message == (
        "0/2 nodes are available: 2 Insufficient cpu. "
        "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
    )
    used = {"a": {"cpu": Decimal("0.6")}}
    small = _pod(containers=[_requesting(cpu="500m")])
    assert pick_node(small, nodes, {"a": 0, "b": 5}, used) == ("b", "")
    assert (
        pick_node(small, nodes, {}, {"a": {"cpu": Decimal("0.6")}, "b": {"cpu": Decimal("0.6")}})[0] is None
    )
    assert node_fits(_pod(containers=[_requesting(**{"nvidia.com/gpu": "1"})]), nodes[0]) == [
        "Insufficient nvidia.com/gpu"
    ]


def test_taints_keep_pods_away_unless_tolerated() -> None:
    gpu = _node("gpu", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    soft = _node("soft", taints=[{"key": "spot", "effect": "PreferNoSchedule"}])
    plain = _pod()
    assert node_fits(plain, gpu) == ["node(s) had untolerated taint {dedicated: gpu}"]
    assert node_fits(plain, soft) == []
    for toleration in (
        {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Exists"},
        {"operator": "Exists"},
    ):
        assert node_fits(_pod(tolerations=[toleration]), gpu) == [], toleration
    for toleration in (
        {"key": "dedicated", "operator": "Equal", "value": "cpu"},
        {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"},
        {"key": "other", "operator": "Exists"},
    ):
        assert node_fits(_pod(tolerations=[toleration]), gpu) != [], toleration
    chosen, message = pick_node(plain, [gpu, _node("tiny", cpu="0")], {})
    assert chosen == "tiny"  # a pod that requests nothing fits a node with nothing to allocate
    chosen, message = pick_node(_pod(nodeSelector={"disk": "ssd"}), [gpu, soft], {})
    assert chosen is None
    assert message == (
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {dedicated: gpu}. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    )


def test_qos_class_follows_requests_and_limits() -> None:
    from tests.k8s_emulator.podstatus import qos_class

    def spec(*resources: dict[str, Any]) -> dict[str, Any]:
        return {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)]}

    both = {"cpu": "100m", "memory": "64Mi"}
    assert qos_class(spec({})) == "BestEffort"
    assert qos_class(spec({"requests": {"cpu": "100m"}})) == "Burstable"
    assert qos_class(spec({"limits": both})) == "Guaranteed"  # requests default to limits
    assert qos_class(spec({"limits": both, "requests": both}, {"limits": both})) == "Guaranteed"
    assert qos_class(spec({"limits": both}, {})) == "Burstable"
    assert qos_class(spec({"limits": both, "requests": {"cpu": "50m"}})) == "Burstable"


def test_back_off_delays_print_as_go_durations() -> None:
    from tests.k8s_emulator.podevents import go_duration

    assert [go_duration(s) for s in (0.5, 1, 10, 80, 160, 300)] == [
        "500ms",
        "1s",
        "10s",
        "1m20s",
        "2m40s",
        "5m0s",
    ]


def test_restart_back_off_doubles_from_a_configurable_base_to_its_cap(tmp_path: Path) -> None:
    from tests.k8s_emulator.events import EventRecorder
    from tests.k8s_emulator.kubelet import Kubelet
    from tests.k8s_emulator.store import Store

    store = Store()
    real = Kubelet(store, EventRecorder(store), tmp_path, mark="m")  # the kubelet's 10 s .. 5 min
    assert [real.backoff(n) for n in range(8)] == [0, 10, 20, 40, 80, 160, 300, 300]
    fast = Kubelet(store, EventRecorder(store), tmp_path, mark="m", backoff=(0.5, 5.0))
    assert [fast.backoff(n) for n in range(6)] == [0, 0.5, 1, 2, 4, 5]
