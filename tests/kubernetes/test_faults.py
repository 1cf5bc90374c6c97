"""Faults on the Kubernetes backend: membership changes mid-run, killed pods, stop, and fail-fast init."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ais_etl.cluster.leases import this_holder
from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.etl.errors import AbortError, PodStartError
from tests.kubernetes.conftest import make_bucket

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from airflow_ais_etl.service import AisEtl
    from tests.k8s_emulator.emulator import K8sEmulator
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]

SLOW = "import time\n\ndef transform(data):\n    time.sleep(0.05)\n    return data.upper()\n"
COUNT = 80


def _visible(dst: Path) -> list[Path]:
    if not dst.is_dir():
        return []
    return [  # no temp file, no journal note (.ais-etl/...)
        p
        for p in dst.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(dst).parts)
    ]


def _run_with_fault(
    api: AisEtl, src: Path, dst: Path, fault: Callable[[], Any], after: int = 6
) -> tuple[BaseException | None, dict[str, Any] | None]:
    """Run an offline transform, call ``fault`` once ``after`` objects are written; return (error, stats)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["stats"] = api.transform_bucket(
                "slow-etl", str(src), str(dst), OfflineOptions(num_workers=1)
            )
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 120
    while len(_visible(dst)) < after and worker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    fault()
    worker.join(120)
    assert not worker.is_alive()
    return outcome.get("error"), outcome.get("stats")


def _assert_aborted(err: BaseException | None, cause: str) -> None:
    assert isinstance(err, AbortError), err
    assert cause in err.cause
    assert "run again with skip_existing to resume" in str(err)


def test_node_removed_mid_run_aborts_and_a_rerun_resumes(
    api: AisEtl, cluster: Cluster, emulator: K8sEmulator, backend: KubernetesBackend
) -> None:
    src, dst = cluster.work / "src", cluster.work / "dst"
    make_bucket(src, [f"o-{i:03d}" for i in range(COUNT)])
    api.init_code("slow-etl", SLOW)
    err, _ = _run_with_fault(api, src, dst, lambda: emulator.remove_node("node-b"))
    _assert_aborted(err, "target node-b left")
    assert backend.endpoints("slow-etl") == []
    info = api.info("slow-etl")
    assert (info.state, info.cause) == ("aborted", "target node-b left")
    done = len(_visible(dst))
    assert 0 < done < COUNT

    api.start("slow-etl")  # one target now
    assert [t.id for t in backend.targets()] == ["node-a"]
    stats = api.transform_bucket("slow-etl", str(src), str(dst), OfflineOptions(skip_existing=True))
    assert stats["objects"] + stats["skipped"] == COUNT
    assert stats["skipped"] >= done - 1
    assert api.info("slow-etl").state == "running"
    api.stop("slow-etl")


def test_killed_pod_aborts_the_run_naming_the_exit(
    api: AisEtl, cluster: Cluster, emulator: K8sEmulator, backend: KubernetesBackend
) -> None:
    src, dst = cluster.work / "src", cluster.work / "dst"
    make_bucket(src, [f"o-{i:03d}" for i in range(COUNT)])
    api.init_code("slow-etl", SLOW)
    pod = next(e.pod_name for e in backend.endpoints("slow-etl") if e.target_id == "node-a")
    err, _ = _run_with_fault(
        api, src, dst, lambda: emulator.kill_container(cluster.namespace, pod, container="server")
    )
    _assert_aborted(err, "pod of node-a exited with code 137")
    assert backend.endpoints("slow-etl") == []
    assert api.info("slow-etl").cause == "pod of node-a exited with code 137"


def test_stop_during_a_run_aborts_it(api: AisEtl, cluster: Cluster, backend: KubernetesBackend) -> None:
    src, dst = cluster.work / "src", cluster.work / "dst"
    make_bucket(src, [f"o-{i:03d}" for i in range(COUNT)])
    api.init_code("slow-etl", SLOW)
    err, _ = _run_with_fault(api, src, dst, lambda: api.stop("slow-etl"))
    _assert_aborted(err, f"etl slow-etl stopped by {this_holder().describe()}")  # who stopped it
    assert api.info("slow-etl").state == "stopped"
    assert 0 < len(_visible(dst)) < COUNT
    assert backend.endpoints("slow-etl") == []


def _spec(**extra: Any) -> str:
    container = {
        "name": "server",
        "image": "registry.invalid/no-such-image:1.0",
        "command": ["python", "-m", "airflow_ais_etl.runtime"],
        "ports": [{"name": "default", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": "default"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    # Pod Security "restricted" (the test namespaces enforce it)
    pod_context = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "x"},
            "spec": {"securityContext": pod_context, "containers": [container], **extra},
        }
    )


def test_a_spec_the_namespace_forbids_fails_with_the_pod_security_violations(api: AisEtl) -> None:
    spec = json.loads(_spec())
    del spec["spec"]["securityContext"]
    spec["spec"]["containers"][0]["securityContext"]["privileged"] = True
    with pytest.raises(PodStartError) as err:
        api.init_spec("forbidden-etl", json.dumps(spec), timeout="5m")
    text = str(err.value)
    assert "403 Forbidden" in text
    assert 'violates PodSecurity "restricted:latest": privileged (container "server" must not set' in text
    assert (
        'runAsNonRoot != true (pod or container "server" must set securityContext.runAsNonRoot=true)' in text
    )
    assert api.list() == []


def test_unknown_image_fails_fast_naming_pod_reason_and_events(
    api: AisEtl, cluster: Cluster, emulator: K8sEmulator
) -> None:
    emulator.fail_image("registry.invalid/no-such-image:1.0")
    with pytest.raises(PodStartError) as err:
        api.init_spec("image-etl", _spec(), timeout="5m")
    text = str(err.value)
    assert "ErrImagePull" in text or "ImagePullBackOff" in text
    assert f"pod {cluster.namespace}/image-etl-node-" in text
    assert 'phase "Pending"' in text
    assert re.search(r"after [3-9] failed pull\(s\)", text)
    assert "last warning events: [" in text
    assert "registry.invalid/no-such-image:1.0" in text
    assert err.value.etl_name == "image-etl"
    assert err.value.target.startswith("node-")
    assert api.list() == []


def test_unschedulable_pod_fails_after_the_scheduling_timeout(api: AisEtl, cluster: Cluster) -> None:
    spec = _spec(nodeSelector={"accelerator": "none-anywhere"})
    with pytest.raises(PodStartError) as err:
        api.init_spec(
            "sched-etl",
            spec.replace("registry.invalid/no-such-image:1.0", "airflow-ais-etl/runtime-python:3.11v2"),
            timeout="5m",
        )
    text = str(err.value)
    assert "Unschedulable" in text
    assert "(scheduling timeout " in text
    assert (
        "FailedScheduling: 0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
        in text
    )
    assert f"pod {cluster.namespace}/sched-etl-node-" in text
    assert api.list() == []
