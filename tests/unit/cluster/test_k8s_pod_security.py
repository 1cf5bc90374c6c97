"""The Kubernetes backend's pods (gateway sidecar included) meet Pod Security ``restricted``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_ais_etl.cluster.kubernetes.gateway import GATEWAY_CONTAINER, GatewayConfig, build_pod
from airflow_ais_etl.etl.constants import COMM_TYPES
from airflow_ais_etl.etl.msg import InitCodeMsg, InitSpecMsg
from airflow_ais_etl.etl.podcheck import parse_pod_spec
from airflow_ais_etl.etl.podsecurity import BASELINE, violations
from airflow_ais_etl.etl.podspec import Target
from airflow_ais_etl.etl.podtemplate import code_env, code_pod_spec
from airflow_ais_etl.etl.runtimes import RUNTIME_UID, RUNTIMES
from airflow_ais_etl.etl.validation import validate

CONFIG = GatewayConfig(port=51081, buckets_file="/shared/buckets.json")
TARGET = Target("t1", "node-1")
DOCKERFILE = Path(__file__).parents[3] / "docker" / "runtime-python.Dockerfile"


def _build(msg: Any, template: dict[str, Any], config: GatewayConfig = CONFIG) -> dict[str, Any]:
    env = code_env(msg) if isinstance(msg, InitCodeMsg) else {}
    image = RUNTIMES["python3.11v2"].image
    return build_pod(config, msg, template, TARGET, env=env, image=image, namespace="etl").pod


@pytest.mark.parametrize("comm", COMM_TYPES)
def test_init_code_pods_with_the_sidecar_are_restricted(comm: str) -> None:
    msg = validate(
        InitCodeMsg(
            name="md5-etl", code="def transform(b):\n    return b\n", runtime="python3.11v2", comm_type=comm
        )
    )
    assert isinstance(msg, InitCodeMsg)
    pod = _build(msg, code_pod_spec(msg))
    assert violations(pod) == []
    policies = {c["imagePullPolicy"] for c in pod["spec"]["containers"] + pod["spec"]["initContainers"][1:]}
    assert policies == {"IfNotPresent"}


SPEC = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "echo"},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 2000, "seccompProfile": {"type": "Localhost"}},
        "containers": [
            {
                "name": "server",
                "image": "aistorage/transformer_echo:latest",
                "ports": [{"name": "default", "containerPort": 80}],
                "readinessProbe": {"httpGet": {"path": "/health", "port": "default"}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
    },
}


def test_a_compliant_user_spec_stays_compliant_and_keeps_its_choices() -> None:
    msg = validate(InitSpecMsg(name="echo-etl", spec=json.dumps(SPEC)))
    assert isinstance(msg, InitSpecMsg)
    pod = _build(msg, parse_pod_spec(msg.spec))
    assert violations(pod) == []
    assert pod["spec"]["securityContext"] == SPEC["spec"]["securityContext"]
    sidecar = pod["spec"]["initContainers"][0]
    assert sidecar["name"] == GATEWAY_CONTAINER
    assert "runAsUser" not in sidecar["securityContext"]  # the pod's uid 2000 holds
    assert "seccompProfile" not in sidecar["securityContext"]  # so does its Localhost profile


def test_a_non_compliant_user_spec_is_not_patched_but_the_sidecar_complies() -> None:
    spec: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "echo"},
        "spec": {"containers": [dict(SPEC["spec"]["containers"][0], securityContext={})]},  # type: ignore[index]
    }
    msg = validate(InitSpecMsg(name="echo-etl", spec=json.dumps(spec)))
    assert isinstance(msg, InitSpecMsg)
    pod = _build(msg, parse_pod_spec(msg.spec))
    found = violations(pod)
    assert found
    assert all('"server"' in v and GATEWAY_CONTAINER not in v for v in found)
    assert pod["spec"]["initContainers"][0]["securityContext"]["runAsUser"] == RUNTIME_UID


def test_host_paths_are_an_opt_in_that_baseline_forbids() -> None:
    msg = validate(
        InitCodeMsg(name="md5-etl", code="def transform(b):\n    return b\n", runtime="python3.11v2")
    )
    config = GatewayConfig(port=51081, buckets_file="/shared/b.json", host_paths=("/shared",))
    pod = _build(msg, code_pod_spec(msg), config)
    assert violations(pod) == [
        'restricted volume types (volume "ais-etl-shared-0" uses restricted volume type "hostPath")'
    ]
    assert violations(pod, BASELINE) == ['hostPath volumes (volume "ais-etl-shared-0")']


def test_the_runtime_image_runs_as_the_uid_the_pods_expect() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.findall(r"^USER (\S+)$", text, re.M) == [str(RUNTIME_UID)]
    assert f"--uid {RUNTIME_UID} " in text
