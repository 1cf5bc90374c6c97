"""Pytest fixtures that start the Kubernetes API emulator (register with ``pytest_plugins``).

One emulator serves a whole test module (:func:`k8s_emulator_shared`); each test gets its own
namespace (:func:`k8s_namespace`) and, afterwards, the emulator is reset to its first state.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import TYPE_CHECKING

import psutil
import pytest

from tests.k8s_emulator.emulator import K8sEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = [
    "NODE_LABELS",
    "NODE_NAMES",
    "k8s_emulator",
    "k8s_emulator_shared",
    "k8s_namespace",
    "k8s_pod_security",
    "kube_config_file",
    "kubernetes_conn_env",
]

POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce"
NODE_NAMES = ("node-a", "node-b")
NODE_LABELS = {"airflow-ais-etl/target": "true"}

_namespace_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def k8s_emulator_shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[K8sEmulator]:
    """Start one emulator for the test module, with two Ready nodes; kill every pod process at the end.

    Tests use it through :func:`k8s_emulator` (which gives each test its own namespace and a fresh
    emulator state). Restart/pull back-off starts at 0.5 s and readiness probes run at least every
    second, so that tests do not wait for production-sized intervals.
    """
    emulator = K8sEmulator(tmp_path_factory.mktemp("k8s-emulator"), backoff=(0.5, 5.0), probe_period_max=1.0)
    try:
        for name in NODE_NAMES:
            emulator.add_node(name, dict(NODE_LABELS))
        emulator.checkpoint()
        yield emulator
    finally:
        emulator.close()
    leaked = emulator.stray_processes() + [p for p in emulator.kubelet.all_pids if _alive(p)]
    assert not leaked, f"pod processes outlived the emulator: {leaked}"


@pytest.fixture
def k8s_pod_security() -> str:
    """Return the Pod Security level the test's namespace enforces: ``restricted``, as hardened clusters do.

    Override the fixture (``privileged``: no label) where tests create pods that need not comply.
    """
    return "restricted"


@pytest.fixture
def k8s_namespace(
    k8s_emulator_shared: K8sEmulator, k8s_pod_security: str, request: pytest.FixtureRequest
) -> Iterator[str]:
    """Create a namespace of this test's own in the module's emulator and return its name.

    It is labelled ``pod-security.kubernetes.io/enforce=<k8s_pod_security>`` (unless ``privileged``),
    so the emulator refuses pods that level forbids, as the API server does.

    Afterwards the emulator is reset: every pod is stopped and every object of the test deleted (in
    any namespace), the nodes, namespaces and fault hooks are as they were, the received bodies are
    forgotten; and no pod process may have outlived its pod.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    name = f"t{next(_namespace_numbers)}-{slug}"[:63].rstrip("-")
    labels = {POD_SECURITY_ENFORCE: k8s_pod_security} if k8s_pod_security != "privileged" else None
    k8s_emulator_shared.create_namespace(name, labels)
    yield name
    leaked = k8s_emulator_shared.reset()
    assert not leaked, f"pod processes outlived their pods: {leaked}"


@pytest.fixture
def k8s_emulator(k8s_emulator_shared: K8sEmulator, k8s_namespace: str) -> K8sEmulator:
    """Return the module's emulator (two Ready nodes), clean for this test; see :func:`k8s_namespace`."""
    return k8s_emulator_shared


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture
def kube_config_file(k8s_emulator: K8sEmulator, k8s_namespace: str, tmp_path: Path) -> Path:
    """Write a kubeconfig that points at the emulator (context namespace: the test's) and return its path."""
    return k8s_emulator.write_kubeconfig(tmp_path / "kubeconfig.yaml", namespace=k8s_namespace)


@pytest.fixture
def kubernetes_conn_env(kube_config_file: Path, k8s_namespace: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point Airflow's ``kubernetes_default`` connection at the emulator and the test's namespace."""
    conn = {
        "conn_type": "kubernetes",
        "extra": {"kube_config_path": str(kube_config_file), "namespace": k8s_namespace},
    }
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(conn))
    return "kubernetes_default"
