"""Every Pod and Service that prepare_pod generates is valid for Kubernetes 1.30 and 1.37 (strict)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from airflow_ais_etl.etl.constants import ARG_FQN, ARG_URL, COMM_TYPES, HPULL, HPUSH, IO
from airflow_ais_etl.etl.msg import InitCodeMsg, InitSpecMsg
from airflow_ais_etl.etl.origin import Origin
from airflow_ais_etl.etl.podcheck import parse_pod_spec
from airflow_ais_etl.etl.podspec import Target, prepare_pod
from airflow_ais_etl.etl.podtemplate import code_env, code_pod_spec
from airflow_ais_etl.etl.runtimes import RUNTIMES
from airflow_ais_etl.etl.validation import validate

VERSIONS = ["1.30.0", "1.37.0"]
TARGETS = [Target(id="AbC_12x", node="node-1"), Target(id="t" * 70, node="ip-10-0-0-1.ec2.internal")]
URL = "http://10.0.0.5:51081/v1/etl/_object/AbCdEfGhIj"
ORIGIN = Origin.from_mapping(
    {
        "dag_id": "my.dag with spaces/" + "x" * 250,
        "task_id": "group.task_1",
        "run_id": "scheduled__2025-01-02T03:04:05+00:00",
        "try_number": 3,
        "map_index": -1,
    }
)

MINIMAL = """\
apiVersion: v1
kind: Pod
metadata: {name: echo}
spec:
  containers:
    - name: server
      image: aistorage/transformer_echo:latest
      command: ["python", "/server.py"]
      ports: [{name: default, containerPort: 80}]
      readinessProbe: {httpGet: {path: /health, port: default}}
"""

RICH = """\
apiVersion: v1
kind: Pod
metadata:
  name: md5
  namespace: user-ns
  labels: {team: data}
  annotations: {note: "x"}
spec:
  restartPolicy: Always
  serviceAccountName: etl
  securityContext: {runAsNonRoot: true, runAsUser: 1000}
  tolerations: [{key: gpu, operator: Exists, effect: NoSchedule}]
  affinity:
    podAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 10
          podAffinityTerm:
            labelSelector: {matchLabels: {app: cache}}
            topologyKey: kubernetes.io/hostname
  initContainers:
    - name: warmup
      image: busybox:1.36
      command: ["sh", "-c", "echo ready"]
  containers:
    - name: transformer
      image: registry.example.com/md5:1.0
      imagePullPolicy: IfNotPresent
      command: ["/app/md5"]
      args: ["--port", "8000"]
      env:
        - {name: LOG_LEVEL, value: debug}
        - name: NODE
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
      ports: [{name: default, containerPort: 8000, protocol: TCP}]
      readinessProbe:
        httpGet: {path: /healthz, port: default}
        initialDelaySeconds: 1
      resources:
        requests: {cpu: 100m, memory: 64Mi}
        limits: {memory: 256Mi}
"""

JSON_SPEC = (
    '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"}, "spec": {"containers": [{"name": "c", '
    '"image": "img:1", "command": ["/bin/io-filter"], "ports": [{"name": "default", "containerPort": 9000}], '
    '"readinessProbe": {"httpGet": {"path": "/", "port": "default"}, "periodSeconds": 2}}]}}'
)


def check(obj: dict[str, Any], version: str) -> None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{obj['kind']} invalid for {version}: {str(exc).splitlines()[0]}")


def arg_for(comm: str) -> str:
    return ARG_FQN if comm == HPUSH else ARG_URL if comm == HPULL else ""


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
@pytest.mark.parametrize("comm", COMM_TYPES)
def test_code_pods(version: str, runtime: str, comm: str) -> None:
    for chunk_size, arg in ((0, ""), (65536, arg_for(comm))):
        msg = validate(
            InitCodeMsg(
                name="md5-etl",
                comm_type=comm,
                arg_type=arg,
                code="def transform(b):\n    return b\n",
                dependencies="numpy\n",
                runtime=runtime,
                chunk_size=chunk_size,
                flags=1,
            )
        )
        assert isinstance(msg, InitCodeMsg)
        for target in TARGETS:
            prep = prepare_pod(
                code_pod_spec(msg),
                msg,
                target,
                target_url=URL,
                extra_env=code_env(msg),
                namespace="airflow-etl",
                labels={
                    "dag_id": "my.dag_with-long-name" * 5,
                    "airflow.apache.org/task": "t1",
                    **ORIGIN.labels(),
                },
                annotations=ORIGIN.annotations(),
            )
            check(prep.pod, version)
            check(prep.service, version)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("spec", [MINIMAL, RICH, JSON_SPEC], ids=["minimal", "rich", "json"])
@pytest.mark.parametrize("comm", COMM_TYPES)
def test_spec_pods(version: str, spec: str, comm: str) -> None:
    msg = validate(InitSpecMsg(name="spec-etl", comm_type=comm, spec=spec))
    pod = parse_pod_spec(spec)
    for target in TARGETS:
        prep = prepare_pod(
            pod,
            msg,
            target,
            target_url=URL,
            extra_env={"EXTRA": "1"},
            labels=ORIGIN.labels(),
            annotations=ORIGIN.annotations(),
        )
        check(prep.pod, version)
        check(prep.service, version)
        if comm == IO:
            assert prep.io_command is not None


def test_the_check_catches_bad_objects() -> None:
    bad = parse_pod_spec(MINIMAL)
    bad["spec"]["containers"][0]["env"] = [{"name": "X", "value": 1}]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSIONS[0], strict=True)
