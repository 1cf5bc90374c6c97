"""Pod Security admission: a namespace labelled ``enforce=restricted`` refuses pods like the API server."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.k8s_emulator.admission import enforced_level
from tests.k8s_emulator.helpers import python_pod, wait_for

if TYPE_CHECKING:
    from kubernetes import client

    from tests.k8s_emulator.emulator import K8sEmulator

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]  # every test runs the emulator

RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


@pytest.fixture
def k8s_pod_security() -> str:
    """This module's namespaces enforce ``restricted`` (the emulator's other tests enforce nothing)."""
    return "restricted"


def _compliant(name: str) -> dict[str, Any]:
    pod = python_pod(name, "import time; time.sleep(30)", securityContext=dict(RESTRICTED_POD))
    pod["spec"]["containers"][0]["securityContext"] = dict(RESTRICTED_CONTAINER)
    return pod


def test_a_bare_pod_is_forbidden_with_the_api_servers_status(
    core_v1: client.CoreV1Api, k8s_namespace: str
) -> None:
    with pytest.raises(ApiException) as refused:
        core_v1.create_namespaced_pod(k8s_namespace, python_pod("bare", "pass"))
    assert refused.value.status == 403
    status = json.loads(refused.value.body)
    assert (status["kind"], status["status"], status["reason"], status["code"]) == (
        "Status",
        "Failure",
        "Forbidden",
        403,
    )
    assert status["details"] == {"name": "bare", "kind": "pods"}
    assert status["message"] == (
        'pods "bare" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
        '(container "main" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities '
        '(container "main" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or '
        'container "main" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "main" '
        'must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
    )
    with pytest.raises(ApiException) as gone:
        core_v1.read_namespaced_pod("bare", k8s_namespace)
    assert gone.value.status == 404


def test_dry_run_is_admitted_too(core_v1: client.CoreV1Api, k8s_namespace: str) -> None:
    with pytest.raises(ApiException) as refused:
        core_v1.create_namespaced_pod(k8s_namespace, python_pod("bare", "pass"), dry_run="All")
    assert refused.value.status == 403


def test_a_compliant_pod_runs_in_a_restricted_namespace(
    core_v1: client.CoreV1Api, k8s_namespace: str, k8s_emulator: K8sEmulator
) -> None:
    pod = _compliant("ok")
    pod["spec"]["securityContext"]["runAsUser"] = 10001  # ignored locally: processes run as this user
    core_v1.create_namespaced_pod(k8s_namespace, pod)
    wait_for(lambda: core_v1.read_namespaced_pod("ok", k8s_namespace).status.phase == "Running")


def test_one_violation_is_enough(core_v1: client.CoreV1Api, k8s_namespace: str) -> None:
    pod = _compliant("escalates")
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    with pytest.raises(ApiException) as refused:
        core_v1.create_namespaced_pod(k8s_namespace, pod)
    assert json.loads(refused.value.body)["message"].endswith(
        'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "main" must set '
        "securityContext.allowPrivilegeEscalation=false)"
    )


def test_baseline_namespaces_and_versions(core_v1: client.CoreV1Api, k8s_emulator: K8sEmulator) -> None:
    labels = {
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/enforce-version": "v1.30",
    }
    k8s_emulator.create_namespace("psa-baseline", labels)
    core_v1.create_namespaced_pod("psa-baseline", python_pod("plain", "import time; time.sleep(30)"))
    host = python_pod("host", "pass", hostNetwork=True, volumes=[{"name": "h", "hostPath": {"path": "/"}}])
    with pytest.raises(ApiException) as refused:
        core_v1.create_namespaced_pod("psa-baseline", host)
    assert json.loads(refused.value.body)["message"] == (
        'pods "host" is forbidden: violates PodSecurity "baseline:v1.30": host namespaces (hostNetwork=true), '
        'hostPath volumes (volume "h")'
    )


def test_unlabelled_namespaces_enforce_nothing(core_v1: client.CoreV1Api, k8s_emulator: K8sEmulator) -> None:
    core_v1.create_namespaced_pod("default", python_pod("anything", "import time; time.sleep(30)"))
    assert enforced_level(None) == ("privileged", "latest")
    assert (
        enforced_level({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "bogus"}}})[0]
        == "privileged"
    )
