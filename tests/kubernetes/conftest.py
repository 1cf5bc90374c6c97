"""Fixtures of the Kubernetes backend tests: the emulator by default, a real cluster when KUBECONFIG is set.

On a real cluster: ``KUBECONFIG`` names the kubeconfig, ``AIS_ETL_K8S_NAMESPACE`` the namespace (default
``default``), ``AIS_ETL_K8S_NODE_SELECTOR`` the target nodes (``k=v,k2=v2``; default
``airflow-ais-etl/target=true``), and ``AIS_ETL_K8S_SHARED_PATH`` a directory every node and this
machine share (local buckets and the gateway's bucket map live there). Tests that need the emulator's
fault hooks are skipped there, and the others run one at a time (one xdist worker: see tests/conftest.py).

On the emulator, a test module shares one emulator and each test has a namespace of its own
(``k8s_namespace`` of tests/k8s_emulator/plugin.py).
"""

from __future__ import annotations

# isort: off
import tests.airflow.conftest  # noqa: F401  (points Airflow at the test home before anything imports it)

# isort: on
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ais_etl.service import AisEtl

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from tests.k8s_emulator.emulator import K8sEmulator

UPPER = "def transform(data):\n    return data.upper()\n"
IO_UPPER = "import sys\nsys.stdout.buffer.write(sys.stdin.buffer.read().upper())\n"
SCHEMA_VERSIONS = ("1.30.0", "1.37.0")
VALIDATED = ("pods", "services", "configmaps", "secrets")
REAL_CLUSTER = bool(os.environ.get("KUBECONFIG"))


def _selector_from_env() -> dict[str, str]:
    raw = os.environ.get("AIS_ETL_K8S_NODE_SELECTOR", "airflow-ais-etl/target=true")
    return dict(pair.split("=", 1) for pair in raw.split(",") if "=" in pair)


@dataclass
class Cluster:
    """Where the tests run: the connection, namespace, target selector and (emulator only) the emulator."""

    conn_id: str
    namespace: str
    node_selector: dict[str, str]
    work: Path
    emulator: K8sEmulator | None

    def backend(self, **kwargs: Any) -> KubernetesBackend:
        options: dict[str, Any] = {
            "buckets_file": str(self.work / "buckets.json"),
            "poll_interval": 0.2,
            "stop_grace": 2,
            "stop_timeout": 20.0,
            "scheduling_timeout": 2.0,
        }
        if REAL_CLUSTER:
            options.update(shared_paths=[str(self.work)], scheduling_timeout=30.0, poll_interval=None)
        options.update(kwargs)
        from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend  # Airflow, kubernetes: slow

        return KubernetesBackend(self.conn_id, self.namespace, self.node_selector, **options)

    def ais_etl_conn(self, **extra: Any) -> str:
        """Return the JSON of an ``ais_etl`` connection with backend=kubernetes for this cluster."""
        extras: dict[str, Any] = {
            "backend": "kubernetes",
            "kubernetes_conn_id": self.conn_id,
            "namespace": self.namespace,
            "node_selector": json.dumps(self.node_selector),
            "buckets_file": str(self.work / "buckets.json"),
            "scheduling_timeout": "10s",
        }
        if REAL_CLUSTER:
            extras["shared_paths"] = [str(self.work)]
        extras.update(extra)
        return json.dumps({"conn_type": "ais_etl", "extra": extras})


def leftovers(backend: KubernetesBackend) -> list[str]:
    """Return every object of ours still in the namespace (pods, services, secrets, the MD ConfigMap)."""
    from airflow_ais_etl.cluster.kubernetes.pods import KubeApiError
    from airflow_ais_etl.cluster.kubernetes.state import MD_CONFIGMAP

    selector = "app.kubernetes.io/managed-by=airflow-ais-etl"
    pods, _ = backend.kube.list_pods(selector)
    out = [f"pod/{p['metadata']['name']}" for p in pods]
    out += [f"service/{s['metadata']['name']}" for s in backend.kube.list_services(selector)]
    out += [f"secret/{s['metadata']['name']}" for s in backend.kube.list_secrets(selector)]
    try:
        out += [
            f"networkpolicy/{p['metadata']['name']}" for p in backend.kube.list_network_policies(selector)
        ]
    except KubeApiError as exc:  # a real cluster's test account may not read networkpolicies
        if exc.status != 403:
            raise
    if backend.kube.read_config_map(MD_CONFIGMAP) is not None:
        out.append(f"configmap/{MD_CONFIGMAP}")
    return out


def claim_volume(backend: KubernetesBackend, path: str, claim: str) -> str:
    """Create a hostPath PersistentVolume at ``path`` and a claim bound to it; return the volume's name."""
    pv = f"{backend.namespace}-{claim}"
    backend.kube.core.create_persistent_volume(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "",
                "hostPath": {"path": path},
                "claimRef": {"namespace": backend.namespace, "name": claim},
            },
        }
    )
    backend.kube.core.create_namespaced_persistent_volume_claim(
        backend.namespace,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim},
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "",
                "volumeName": pv,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    return pv


def validate_sent(emulator: K8sEmulator) -> int:
    """Validate every Pod, Service, ConfigMap, Secret, NetworkPolicy and PVC the emulator received; count them."""
    import kubernetes_validate

    count = 0
    for resource in (*VALIDATED, "networkpolicies", "persistentvolumeclaims", "persistentvolumes"):
        for obj in emulator.received_objects(resource):
            for version in SCHEMA_VERSIONS:
                kubernetes_validate.validate(obj, version, strict=True)
            count += 1
    return count


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """Return the cluster the test runs on (the emulator unless KUBECONFIG is set)."""
    if REAL_CLUSTER:
        shared = os.environ.get("AIS_ETL_K8S_SHARED_PATH") or tempfile.gettempdir()
        work = Path(tempfile.mkdtemp(prefix="ais-etl-k8s-", dir=shared))
        conn = {"conn_type": "kubernetes", "extra": {"kube_config_path": os.environ["KUBECONFIG"]}}
        monkeypatch.setenv("AIRFLOW_CONN_AIS_ETL_K8S_TEST", json.dumps(conn))
        namespace = os.environ.get("AIS_ETL_K8S_NAMESPACE", "default")
        return Cluster("ais_etl_k8s_test", namespace, _selector_from_env(), work, None)
    from tests.k8s_emulator.plugin import NODE_LABELS

    conn_id = request.getfixturevalue("kubernetes_conn_env")
    emulator = request.getfixturevalue("k8s_emulator")
    namespace = request.getfixturevalue("k8s_namespace")  # the test's own, in the module's emulator
    work = tmp_path / "work"
    work.mkdir()
    return Cluster(conn_id, namespace, dict(NODE_LABELS), work, emulator)


@pytest.fixture
def emulator(cluster: Cluster) -> K8sEmulator:
    """Return the emulator (for its fault hooks); skip on a real cluster."""
    if cluster.emulator is None:
        pytest.skip("needs the emulator's fault hooks (KUBECONFIG points at a real cluster)")
    return cluster.emulator


@pytest.fixture
def backend(cluster: Cluster) -> Iterator[KubernetesBackend]:
    """A backend on the cluster; afterwards nothing of ours may remain, and every manifest must validate."""
    from airflow_ais_etl.cluster.kubernetes.state import MD_CONFIGMAP

    b = cluster.backend()
    try:
        yield b
    finally:
        try:
            for name in AisEtl(b).stop_all():
                print(f"stopped leftover etl {name}")
            remaining = leftovers(b)
            b.kube.delete_config_map(MD_CONFIGMAP)
        finally:
            b.close()
    assert [r for r in remaining if not r.startswith("configmap/")] == []
    if cluster.emulator is not None:
        assert validate_sent(cluster.emulator) > 0


@pytest.fixture
def api(backend: KubernetesBackend) -> AisEtl:
    return AisEtl(backend)


def make_bucket(root: Path, names: list[str]) -> dict[str, bytes]:
    data = {}
    for i, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = f"object {i} {name} ".encode() * (i + 1)
        path.write_bytes(payload)
        data[name] = payload
    return data
