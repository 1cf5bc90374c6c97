"""The cncf-kubernetes provider's hooks and PodManager, and a runtime-image pod, against the emulator."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook, KubernetesHook
from airflow.providers.cncf.kubernetes.utils.pod_manager import PodManager
from kubernetes import client

from tests.k8s_emulator.helpers import POD_IP_ENV, python_pod, wait_ready

if TYPE_CHECKING:
    from tests.k8s_emulator.emulator import K8sEmulator

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]  # every test runs the emulator


def test_kubernetes_hook_and_pod_manager(
    kubernetes_conn_env: str, k8s_emulator: K8sEmulator, k8s_namespace: str
) -> None:
    hook = KubernetesHook(conn_id=kubernetes_conn_env)
    assert hook.get_namespace() == k8s_namespace
    manager = PodManager(hook.core_v1_client)
    code = "import time\nprint('hello from the pod', flush=True)\ntime.sleep(0.5)\nprint('bye', flush=True)\n"
    body = python_pod("airflow-pod", code)
    body["metadata"]["namespace"] = k8s_namespace
    pod = client.ApiClient().deserialize(SimpleNamespace(data=json.dumps(body)), "V1Pod")
    created = manager.create_pod(pod)
    assert created.metadata.uid

    asyncio.run(manager.await_pod_start(pod, schedule_timeout=20, startup_timeout=20, check_interval=0.1))  # type: ignore[arg-type]
    remote = manager.read_pod(pod)
    assert remote.status.phase in ("Running", "Succeeded")

    lines = [
        line.decode() if isinstance(line, bytes) else line
        for line in manager.read_pod_logs(pod, "main", follow=True)
    ]
    text = "".join(lines)
    assert "hello from the pod" in text
    assert "bye" in text

    manager.delete_pod(pod)
    manager.delete_pod(pod)  # a second delete (404) is swallowed by PodManager
    k8s_emulator.wait_for(lambda: k8s_emulator.store.find("pods", k8s_namespace, "airflow-pod") is None)


def test_async_kubernetes_hook(
    kubernetes_conn_env: str, core_v1: client.CoreV1Api, k8s_namespace: str
) -> None:
    core_v1.create_namespaced_pod(
        k8s_namespace, python_pod("async-pod", "print('async logs', flush=True)\nimport time; time.sleep(30)")
    )
    wait_ready(core_v1, "async-pod", k8s_namespace)

    async def scenario() -> tuple[str, list[str]]:
        hook = AsyncKubernetesHook(conn_id=kubernetes_conn_env)
        remote = await hook.get_pod("async-pod", k8s_namespace)
        # Ready comes when the process starts; its first line may come a moment later (a loaded
        # machine), as with a real kubelet: read again until it is there or 30 s have passed.
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            logs = await hook.read_logs("async-pod", k8s_namespace, container_name="main")
            if (
                any("async logs" in str(line) for line in logs)
                or asyncio.get_running_loop().time() > deadline
            ):
                return remote.status.phase, logs
            await asyncio.sleep(0.1)

    phase, logs = asyncio.run(scenario())
    assert phase == "Running"
    assert any("async logs" in str(line) for line in logs)


def test_runtime_image_pod_serves_transforms(core_v1: client.CoreV1Api, k8s_namespace: str) -> None:
    code = "def transform(data):\n    return data.upper()\n"
    image = "airflow-ais-etl/runtime-python:3.11v2"
    volumes = [{"name": "code", "emptyDir": {}}]
    init = {
        "name": "server-deps",
        "image": image,
        "command": ["sh", "-c", 'printf \'%s\' "$AISTORE_CODE" > "$AIS_ETL_DST_DIR/code.py"'],
        "env": [{"name": "AISTORE_CODE", "value": code}, {"name": "AIS_ETL_DST_DIR", "value": "/dst"}],
        "volumeMounts": [{"name": "code", "mountPath": "/dst"}],
    }
    server = {
        "name": "server",
        "image": image,
        "ports": [{"name": "default", "containerPort": 8080}],
        "env": [
            {"name": "MOD_NAME", "value": "code"},
            {"name": "FUNC_TRANSFORM", "value": "transform"},
            {"name": "COMM_TYPE", "value": "hpush://"},
            {"name": "AIS_ETL_CODE_DIR", "value": "/code"},
            {"name": "AIS_ETL_LISTEN_PORT", "value": "8080"},
            {"name": "AIS_ETL_WORKERS", "value": "1"},
            POD_IP_ENV,
        ],
        "readinessProbe": {"httpGet": {"path": "/health", "port": "default"}},
        "volumeMounts": [{"name": "code", "mountPath": "/code"}],
    }
    pod = {
        "metadata": {"name": "runtime-pod"},
        "spec": {"initContainers": [init], "containers": [server], "volumes": volumes},
    }
    core_v1.create_namespaced_pod(k8s_namespace, pod)
    ready = wait_ready(core_v1, "runtime-pod", k8s_namespace, timeout=30)
    request = urllib.request.Request(f"http://{ready.status.pod_ip}:8080/", data=b"abc", method="PUT")
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.read() == b"ABC"
