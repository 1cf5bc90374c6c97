"""Pytest fixtures that start the Kubernetes API emulator (register with ``pytest_plugins``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import psutil
import pytest

from tests.k8s_emulator.emulator import K8sEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

__all__ = ["NODE_LABELS", "NODE_NAMES", "k8s_emulator", "kube_config_file", "kubernetes_conn_env"]

NODE_NAMES = ("node-a", "node-b")
NODE_LABELS = {"airflow-ais-etl/target": "true"}


@pytest.fixture
def k8s_emulator(tmp_path: Path) -> Iterator[K8sEmulator]:
    """Start an emulator with two Ready nodes; kill every pod process afterwards.

    Restart/pull back-off starts at 0.5 s and readiness probes run at least every second, so that
    tests do not wait for production-sized intervals.
    """
    emulator = K8sEmulator(tmp_path / "k8s-emulator", backoff=(0.5, 5.0), probe_period_max=1.0)
    try:
        for name in NODE_NAMES:
            emulator.add_node(name, dict(NODE_LABELS))
        yield emulator
    finally:
        emulator.close()
    leaked = emulator.stray_processes() + [p for p in emulator.kubelet.all_pids if _alive(p)]
    assert not leaked, f"pod processes outlived the emulator: {leaked}"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture
def kube_config_file(k8s_emulator: K8sEmulator, tmp_path: Path) -> Path:
    """Write a kubeconfig that points at the emulator and return its path."""
    return k8s_emulator.write_kubeconfig(tmp_path / "kubeconfig.yaml")


@pytest.fixture
def kubernetes_conn_env(kube_config_file: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point Airflow's ``kubernetes_default`` connection at the emulator; return the conn id."""
    conn = {
        "conn_type": "kubernetes",
        "extra": {"kube_config_path": str(kube_config_file), "namespace": "default"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(conn))
    return "kubernetes_default"
