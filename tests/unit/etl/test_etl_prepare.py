"""Per-target pod preparation (§3.2 steps 2–9, with our changes) and the io:// query (§4.2)."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from airflow_ais_etl.etl.constants import HPULL, HPUSH, HREV, IO
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.msg import InitCodeMsg, InitSpecMsg
from airflow_ais_etl.etl.podcheck import parse_pod_spec
from airflow_ais_etl.etl.podspec import IO_SERVER_COMMAND, Target, io_query, prepare_pod
from airflow_ais_etl.etl.podtemplate import IO_CODE_COMMAND, code_env, code_pod_spec
from airflow_ais_etl.etl.runtimes import RUNTIME_SERVER_COMMAND
from airflow_ais_etl.etl.validation import validate

TARGET = Target(id="AbC_12x", node="node-1")
URL = "http://10.0.0.5:51081/v1/etl/_object/AbCdEfGhIj"
SPEC = """\
apiVersion: v1
kind: Pod
metadata:
  name: transformer
  labels: {team: data, app: mine}
spec:
  containers:
    - name: server
      image: aistorage/transformer_md5:latest
      command: ["python", "/app/server.py"]
      args: ["--verbose"]
      env:
        - {name: AIS_TARGET_URL, value: user-value}
        - {name: KEEP, value: "1"}
      ports:
        - {name: default, containerPort: 8000}
      readinessProbe:
        httpGet: {path: /health, port: default}
  initContainers:
    - name: fetch
      image: busybox
      command: ["true"]
"""


def spec_msg(comm: str = HPUSH) -> InitSpecMsg:
    out = validate(InitSpecMsg(name="spec-etl", comm_type=comm, spec=SPEC))
    assert isinstance(out, InitSpecMsg)
    return out


def prepared(comm: str = HPUSH, **kw: Any) -> tuple[dict[str, Any], Any]:
    pod = parse_pod_spec(SPEC)
    return pod, prepare_pod(pod, spec_msg(comm), TARGET, target_url=URL, **kw)


def env_names(container: dict[str, Any]) -> list[str]:
    return [e["name"] for e in container.get("env", [])]


def env_map(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_name_api_version_and_input_untouched() -> None:
    pod, prep = prepared()
    before = parse_pod_spec(SPEC)
    assert pod == before  # deep copy: the input is not modified
    assert prep.pod_name == "spec-etl-abc-12x"
    assert prep.pod["metadata"]["name"] == prep.pod_name
    assert prep.pod["apiVersion"] == "v1"
    assert prep.io_command is None
    assert prep.pod["spec"]["containers"][0]["command"] == ["python", "/app/server.py"]


def test_node_affinity_pins_to_the_target_node() -> None:
    _, prep = prepared()
    assert prep.pod["spec"]["affinity"] == {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}
                        ]
                    }
                ]
            }
        }
    }


def test_user_affinity_is_refused_with_target_context() -> None:
    pod = parse_pod_spec(SPEC)
    pod["spec"]["affinity"] = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}
            ]
        }
    }
    with pytest.raises(ValidationError) as info:
        prepare_pod(pod, spec_msg(), TARGET, target_url=URL)
    assert str(info.value).startswith(
        '[t[AbC_12x],etl="spec-etl",pod="spec-etl-abc-12x"] error in YAML spec: pod should not have any NodeAffinities'
    )
    pod["spec"]["affinity"] = {
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"x": 1}]}
    }
    with pytest.raises(ValidationError, match="pod should not have any NodeAntiAffinities defined"):
        prepare_pod(pod, spec_msg(), TARGET, target_url=URL)


def test_pod_affinity_is_kept_and_empty_node_affinity_replaced() -> None:
    pod = parse_pod_spec(SPEC)
    pod_affinity: dict[str, list[object]] = {"preferredDuringSchedulingIgnoredDuringExecution": []}
    pod["spec"]["affinity"] = {
        "podAffinity": pod_affinity,
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}},
    }
    prep = prepare_pod(pod, spec_msg(), TARGET, target_url=URL)
    affinity = prep.pod["spec"]["affinity"]
    assert affinity["podAffinity"] == pod_affinity
    terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms[0]["matchExpressions"][0]["values"] == ["node-1"]


def test_io_with_a_foreign_image_uses_the_reference_io_server() -> None:
    _, prep = prepared(IO)
    container = prep.pod["spec"]["containers"][0]
    assert prep.io_command == ["python", "/app/server.py"]
    assert container["command"] == IO_SERVER_COMMAND == ["sh", "-c", "/server"]
    assert container["args"] == ["--verbose"]  # untouched
    assert json.loads(env_map(container)["AIS_ETL_IO_COMMAND"]) == ["python", "/app/server.py"]


def test_io_with_our_image_uses_our_server() -> None:
    code = validate(InitCodeMsg(name="md5-etl", comm_type=IO, code="x", runtime="python3.12v2"))
    assert isinstance(code, InitCodeMsg)
    prep = prepare_pod(code_pod_spec(code), code, TARGET, target_url=URL, extra_env=code_env(code))
    container = prep.pod["spec"]["containers"][0]
    assert prep.io_command == IO_CODE_COMMAND
    assert container["command"] == RUNTIME_SERVER_COMMAND
    assert json.loads(env_map(container)["AIS_ETL_IO_COMMAND"]) == prep.io_command
    assert urlencode(io_query(prep.io_command)) == (
        "command=bash&command=-c&command=python+-m+airflow_ais_etl.runtime.iomain+%22%24AIS_ETL_CODE_DIR%2Fcode.py%22"
    )


def test_io_server_command_override() -> None:
    _, prep = prepared(IO, io_server_command=["/bin/io-server", "--port", "8000"])
    assert prep.pod["spec"]["containers"][0]["command"] == ["/bin/io-server", "--port", "8000"]


def test_io_without_command_is_refused() -> None:
    pod = parse_pod_spec(SPEC)
    del pod["spec"]["containers"][0]["command"]
    with pytest.raises(ValidationError, match=r"io:// requires spec\.containers\[0\]\.command"):
        prepare_pod(pod, InitSpecMsg(name="spec-etl", comm_type=IO, spec=""), TARGET, target_url=URL)


def test_labels() -> None:
    _, prep = prepared(labels={"dag_id": "my dag", "app": "override-attempt", "example.com/x": "y"})
    labels = prep.pod["metadata"]["labels"]
    assert labels["team"] == "data"
    assert labels["example.com/x"] == "y"
    assert labels["dag_id"].startswith("my-dag-")
    assert {k: labels[k] for k in labels if k not in ("team", "dag_id", "example.com/x")} == {
        "app": "ais",
        "nvidia.com/ais-etl-name": "spec-etl-abc-12x",
        "nvidia.com/ais-etl-node": "node-1",
        "nvidia.com/ais-etl-target": "AbC_12x",
        "app.kubernetes.io/name": "etl",
        "app.kubernetes.io/component": "server",
        "app.kubernetes.io/managed-by": "airflow-ais-etl",
        "app.kubernetes.io/instance": "spec-etl",
    }
    assert prep.service["metadata"]["labels"] == labels


@pytest.mark.parametrize("key", ["", "bad key", "-x", "a/b/c", "/x", "UPPER.example.com/x"])
def test_bad_label_keys(key: str) -> None:
    with pytest.raises(ValidationError, match="invalid label key"):
        prepared(labels={key: "v"})


def test_target_id_and_node_are_sanitised_for_labels() -> None:
    pod = parse_pod_spec(SPEC)
    prep = prepare_pod(pod, spec_msg(), Target(id="t:1/é", node="-node-"), target_url=URL)
    labels = prep.pod["metadata"]["labels"]
    assert labels["nvidia.com/ais-etl-target"] != "t:1/é"
    assert labels["nvidia.com/ais-etl-target"][0].isalnum()
    assert labels["nvidia.com/ais-etl-node"][0].isalnum()
    terms = prep.pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["-node-"]  # the real node name


def test_readiness_defaults_only_when_both_unset() -> None:
    _, prep = prepared()
    probe = prep.pod["spec"]["containers"][0]["readinessProbe"]
    assert (probe["timeoutSeconds"], probe["periodSeconds"]) == (5, 10)
    pod = parse_pod_spec(SPEC)
    pod["spec"]["containers"][0]["readinessProbe"]["periodSeconds"] = 3
    probe = prepare_pod(pod, spec_msg(), TARGET, target_url=URL).pod["spec"]["containers"][0][
        "readinessProbe"
    ]
    assert probe.get("timeoutSeconds") is None
    assert probe["periodSeconds"] == 3


def test_env_order_and_shadowing() -> None:
    _, prep = prepared(extra_env={"AISTORE_CODE": "c", "AISTORE_DEPS": "d", "KEEP": "2"})
    main = prep.pod["spec"]["containers"][0]
    # the user's AIS_TARGET_URL and KEEP are replaced (not shadowed); ours come last, in order
    # then the message's comm/arg types, which the user spec did not set
    assert env_names(main) == [
        "AIS_TARGET_URL",
        "AISTORE_CODE",
        "AISTORE_DEPS",
        "KEEP",
        "COMM_TYPE",
        "ARG_TYPE",
    ]
    assert env_map(main) == {
        "AIS_TARGET_URL": URL,
        "AISTORE_CODE": "c",
        "AISTORE_DEPS": "d",
        "KEEP": "2",
        "COMM_TYPE": "hpush://",
        "ARG_TYPE": "",
    }
    init = prep.pod["spec"]["initContainers"][0]
    assert env_map(init) == {"AISTORE_CODE": "c", "AISTORE_DEPS": "d", "KEEP": "2"}  # no AIS_TARGET_URL


def test_code_pod_env_order() -> None:
    code = validate(InitCodeMsg(name="md5-etl", code="print(1)", runtime="python3.11v2"))
    assert isinstance(code, InitCodeMsg)
    prep = prepare_pod(code_pod_spec(code), code, TARGET, target_url=URL, extra_env=code_env(code))
    names = env_names(prep.pod["spec"]["containers"][0])
    assert names[-3:] == ["AIS_TARGET_URL", "AISTORE_CODE", "AISTORE_DEPS"]
    assert names[0] == "MOD_NAME"
    init_env = env_map(prep.pod["spec"]["initContainers"][0])
    assert init_env["AISTORE_CODE"] == "print(1)"
    assert "AIS_TARGET_URL" not in init_env


@pytest.mark.parametrize("namespace", [None, "etl"])
def test_service(namespace: str | None) -> None:
    _, prep = prepared(namespace=namespace)
    svc = prep.service
    assert (svc["apiVersion"], svc["kind"], svc["metadata"]["name"]) == ("v1", "Service", "spec-etl-abc-12x")
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["selector"] == {"nvidia.com/ais-etl-name": "spec-etl-abc-12x", "app": "ais"}
    assert svc["spec"]["ports"] == [
        {"name": "default", "port": 8000, "targetPort": "default", "protocol": "TCP"}
    ]
    assert svc["metadata"].get("namespace") == namespace
    assert prep.pod["metadata"].get("namespace") == namespace


@pytest.mark.parametrize("comm", [HPUSH, HPULL, HREV])
def test_non_io_keeps_the_command(comm: str) -> None:
    _, prep = prepared(comm)
    assert prep.io_command is None
    assert "AIS_ETL_IO_COMMAND" not in env_map(prep.pod["spec"]["containers"][0])


def test_prepare_twice_gives_equal_results() -> None:
    pod = parse_pod_spec(SPEC)
    frozen = copy.deepcopy(pod)
    a = prepare_pod(pod, spec_msg(), TARGET, target_url=URL)
    b = prepare_pod(pod, spec_msg(), TARGET, target_url=URL)
    assert a == b
    assert pod == frozen


def test_io_query_vector() -> None:
    assert io_query(["python", "/app/x.py"]) == [
        ("command", "bash"),
        ("command", "-c"),
        ("command", "python /app/x.py"),
    ]
    assert (
        urlencode(io_query(["python", "/app/x.py"])) == "command=bash&command=-c&command=python+%2Fapp%2Fx.py"
    )


def test_comm_and_arg_type_env_set_by_the_spec_are_kept() -> None:
    pod = parse_pod_spec(SPEC)
    pod["spec"]["containers"][0]["env"] = [{"name": "COMM_TYPE", "value": "custom"}]
    prep = prepare_pod(pod, spec_msg(HPUSH), TARGET, target_url=URL)
    env = env_map(prep.pod["spec"]["containers"][0])
    assert env["COMM_TYPE"] == "custom"
    assert env["ARG_TYPE"] == ""
