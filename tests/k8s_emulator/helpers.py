"""Pod manifests and waiting helpers shared by the emulator's tests."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from kubernetes.client.exceptions import ApiException

if TYPE_CHECKING:
    from collections.abc import Callable

    from kubernetes import client

POD_IP_ENV = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


def python_pod(
    name: str, code: str, *, restart: str = "Never", image: str = "python:3.11-slim", **spec: Any
) -> dict[str, Any]:
    """Return a pod whose single container runs ``python -c code``."""
    container = {"name": "main", "image": image, "command": ["python", "-c", code], "env": [POD_IP_ENV]}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": restart, "containers": [container], **spec},
    }


def http_pod(name: str, *, port: int = 8080, failure_threshold: int = 3, **spec: Any) -> dict[str, Any]:
    """Return a pod running ``python -m http.server`` on ``$(POD_IP)`` with an httpGet readiness probe."""
    container = {
        "name": "web",
        "image": "python:3.11-slim",
        "command": ["python", "-m", "http.server", str(port), "--bind", "$(POD_IP)"],
        "env": [POD_IP_ENV],
        "ports": [{"name": "http", "containerPort": port}],
        "readinessProbe": {
            "httpGet": {"path": "/", "port": "http"},
            "periodSeconds": 1,
            "failureThreshold": failure_threshold,
        },
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container], **spec},
    }


def wait_for(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll ``check()`` until it returns something truthy (404s count as not yet)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except ApiException as exc:
            if exc.status != 404:
                raise
            last = None
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value {last!r})")


def condition(pod: client.V1Pod, kind: str) -> Any:
    """Return the pod condition (``V1PodCondition``) of type ``kind``, or None."""
    return next((c for c in pod.status.conditions or [] if c.type == kind), None)


def is_ready(pod: client.V1Pod) -> bool:
    """Tell whether the pod's Ready condition is True."""
    cond = condition(pod, "Ready")
    return cond is not None and cond.status == "True"


def wait_ready(
    core: client.CoreV1Api, name: str, namespace: str = "default", timeout: float = 20.0
) -> client.V1Pod:
    """Wait for the pod to be Ready and return it."""
    return wait_for(lambda: (p := core.read_namespaced_pod(name, namespace)) and is_ready(p) and p, timeout)


def wait_gone(core: client.CoreV1Api, name: str, namespace: str = "default", timeout: float = 20.0) -> None:
    """Wait until reading the pod answers 404."""

    def gone() -> bool:
        try:
            core.read_namespaced_pod(name, namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, timeout)


def events_for(core: client.CoreV1Api, name: str, namespace: str = "default") -> list[tuple[str, str, str]]:
    """Return ``(type, reason, message)`` of the events about object ``name``."""
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return [(e.type, e.reason, e.message) for e in events]
