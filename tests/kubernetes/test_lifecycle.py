"""The Kubernetes backend end to end: init code/spec, every comm type, offline and inline, observability."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.cluster.kubernetes.gateway import GATEWAY_CONTAINER
from airflow_ais_etl.cluster.kubernetes.state import MD_CONFIGMAP
from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.etl.errors import EtlNotFoundError, ValidationError
from airflow_ais_etl.service import AisEtl
from tests.kubernetes.conftest import IO_UPPER, UPPER, make_bucket

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]

AWKWARD = [
    "plain.txt",
    "with space.txt",
    "ünïcödé.txt",
    "per%cent.txt",
    "hash#tag.txt",
    "nested/dir/deep name.txt",
]

SPEC = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "spec-transformer"},
    "spec": {
        # Pod Security "restricted" (the test namespaces enforce it)
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "server",
                "image": "airflow-ais-etl/runtime-python:3.11v2",
                "command": [
                    "python",
                    "-c",
                    "'import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])'",
                ],
                # io:// joins the command with spaces for bash -c (reference), hence the quotes
                "ports": [{"name": "default", "containerPort": 8000}],
                "readinessProbe": {"httpGet": {"path": "/health", "port": "default"}},
                "env": [
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "AIS_ETL_LISTEN_PORT", "value": "8000"},
                ],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
    },
}


@pytest.mark.parametrize("comm_type", ["hpush://", "hpull://", "hrev://", "io://"])
def test_init_code_and_inline_transforms_of_awkward_names(
    api: AisEtl, cluster: Cluster, backend: KubernetesBackend, tmp_path: Path, comm_type: str
) -> None:
    data = make_bucket(cluster.work / "src", AWKWARD)
    src_dir = str(cluster.work / "src")
    info = api.init_code("upper-etl", IO_UPPER if comm_type == "io://" else UPPER, comm_type=comm_type)
    assert (info.state, info.pods, info.comm_type) == ("running", len(backend.targets()), comm_type)
    for name, payload in data.items():
        assert api.transform_object("upper-etl", src_dir, name) == payload.upper(), name
    out = tmp_path / "out"
    summary = api.transform_object(
        "upper-etl", src_dir, "nested/dir/deep name.txt", dst=str(out), dst_name="x/y.txt"
    )
    assert isinstance(summary, dict)
    assert (out / "x" / "y.txt").read_bytes() == data["nested/dir/deep name.txt"].upper()
    assert api.info("upper-etl").stats["inline_objects"] == len(AWKWARD) + 1
    assert api.stop("upper-etl") is True
    assert api.stop("upper-etl") is False  # idempotent
    assert backend.endpoints("upper-etl") == []


def test_pods_carry_labels_affinity_and_the_gateway_sidecar(api: AisEtl, backend: KubernetesBackend) -> None:
    api.init_code("label-etl", UPPER, comm_type="hpull://")
    pods, _ = backend.kube.list_pods("app.kubernetes.io/instance=label-etl")
    assert sorted(
        p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ][0]["matchExpressions"][0]["values"][0]
        for p in pods
    ) == sorted(t.node for t in backend.targets())
    for pod in pods:
        labels = pod["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "airflow-ais-etl"
        assert labels["app.kubernetes.io/instance"] == "label-etl"
        sidecar = pod["spec"]["initContainers"][0]
        assert sidecar["name"] == GATEWAY_CONTAINER
        assert sidecar["restartPolicy"] == "Always"
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert (
            env["AIS_TARGET_URL"] == "http://$(AIS_ETL_POD_IP):8081/v1/etl/_object/$(AIS_ETL_GATEWAY_SECRET)"
        )
    services = backend.kube.list_services("app.kubernetes.io/instance=label-etl")
    assert sorted(s["metadata"]["name"] for s in services) == sorted(p["metadata"]["name"] for p in pods)
    api.stop("label-etl")


def test_init_spec_offline_transform_and_resume(
    api: AisEtl, cluster: Cluster, backend: KubernetesBackend
) -> None:
    src, dst = cluster.work / "src", cluster.work / "dst"
    data = make_bucket(src, [f"obj-{i:03d}.bin" for i in range(40)])
    info = api.init_spec("reverse-etl", json.dumps(SPEC), comm_type="io://")
    assert info.kind == "spec"
    stats = api.transform_bucket("reverse-etl", str(src), str(dst), OfflineOptions(num_workers=4))
    assert (stats["state"], stats["objects"], stats["errors"]) == ("done", 40, [])
    for name, payload in data.items():
        assert (dst / name).read_bytes() == payload[::-1]
    assert {t for t, s in stats["targets"].items() if s["objects"]} == {t.id for t in backend.targets()}
    (src / "obj-new.bin").write_bytes(b"new one")
    again = api.transform_bucket("reverse-etl", str(src), str(dst), OfflineOptions(skip_existing=True))
    assert (again["objects"], again["skipped"]) == (1, 40)
    assert (dst / "obj-new.bin").read_bytes() == b"eno wen"
    api.stop("reverse-etl")


def test_health_metrics_logs_and_discovery_from_another_worker(
    api: AisEtl, cluster: Cluster, backend: KubernetesBackend
) -> None:
    code = "import sys\nprint('transformer says hi', file=sys.stderr, flush=True)\n" + UPPER
    api.init_code("observe-etl", code)
    health = api.health("observe-etl")
    assert {h.status for h in health} == {"Running"}
    assert sorted(h.target_id for h in health) == sorted(t.id for t in backend.targets())
    metrics = api.metrics("observe-etl")
    assert len(metrics) == len(health)
    assert all(m.mem > 0 and m.cpu >= 0 for m in metrics)
    logs = api.logs("observe-etl")
    assert all("transformer says hi" in entry.logs for entry in logs)
    first = logs[0].target_id
    assert [entry.target_id for entry in api.logs("observe-etl", first)] == [first]
    with pytest.raises(ValidationError, match="unknown target"):
        api.logs("observe-etl", "no-such-node")

    other = cluster.backend()  # another worker: it knows nothing but the cluster
    try:
        second = AisEtl(other)
        assert [i.name for i in second.list()] == ["observe-etl"]
        assert second.info("observe-etl").state == "running"
        assert second.stop("observe-etl") is True
    finally:
        other.close()
    assert api.info("observe-etl").state == "stopped"
    with pytest.raises(EtlNotFoundError, match="not running"):
        api.health("observe-etl")
    api.delete("observe-etl")
    assert api.list() == []


def test_md_updates_use_optimistic_concurrency(cluster: Cluster, backend: KubernetesBackend) -> None:
    import threading

    others = [cluster.backend() for _ in range(4)]
    try:

        def bump(b: KubernetesBackend) -> None:
            for _ in range(5):
                b.add_stats("race-etl", {"n": 1})

        threads = [threading.Thread(target=bump, args=(b,)) for b in others]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for b in others:
            b.close()
    assert backend.stats("race-etl") == {"n": 20}
    assert backend.kube.read_config_map(MD_CONFIGMAP) is not None


def test_fqn_is_refused_without_shared_paths(cluster: Cluster) -> None:
    b = cluster.backend(shared_paths=())
    try:
        with pytest.raises(ValidationError, match="shared_paths"):
            AisEtl(b).init_code("fqn-etl", UPPER, comm_type="hpush://", arg_type="fqn")
        assert b.endpoints("fqn-etl") == []
    finally:
        b.close()


def test_fqn_works_where_paths_are_shared(cluster: Cluster) -> None:
    shared = cluster.work / "shared"
    src = shared / "src"
    data = make_bucket(src, ["a.txt", "b c.txt"])
    # The emulator's pods see this machine's files already: declare the path without mounting it.
    b = cluster.backend(shared_paths=[str(shared)], mount_shared_paths=cluster.emulator is None)
    api = AisEtl(b)
    try:
        api.init_code("fqn-etl", UPPER, comm_type="hpush://", arg_type="fqn")
        for name, payload in data.items():
            assert api.transform_object("fqn-etl", str(src), name) == payload.upper()
        api.stop("fqn-etl")
    finally:
        b.kube.delete_config_map(MD_CONFIGMAP)
        b.close()
