"""AIStore's spec formats: runtime specs, Pod annotations, several documents, ``${VAR:-default}``."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from airflow_ais_etl.etl.aisspec import load_spec_documents
from airflow_ais_etl.etl.constants import HPULL, HPUSH
from airflow_ais_etl.etl.definition import EtlDefinition, SpecSource
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.msg import InitSpecMsg
from airflow_ais_etl.etl.placeholders import expand_placeholders, expand_text
from airflow_ais_etl.etl.validation import validate

# NVIDIA/ais-etl transformers/md5/etl_spec.yaml, comments left out
RUNTIME_SPEC = """\
name: md5-transformer-etl
runtime:
  image: aistorage/transformer_md5:latest
  command: ["uvicorn", "fastapi_server:fastapi_app", "--host", "0.0.0.0", "--port", "8000"]
  env:
    - name: COMPRESS_OPTIONS
      value: ${COMPRESS_OPTIONS:-"{}"}
communication: hpull://
argument: fqn
init_timeout: 5m
obj_timeout: 45s
support_direct_put: true
"""

# the shape of NVIDIA/ais-etl transformers/*/pod.yaml
POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: transformer-md5
  annotations:
    communication_type: ${COMMUNICATION_TYPE:-"\\"hpull://\\""}
    wait_timeout: 5m
    support_direct_put: "true"
spec:
  containers:
    - name: server
      image: aistorage/transformer_md5:latest
      ports:
        - name: default
          containerPort: 8000
      command: ["uvicorn", "fastapi_server:fastapi_app", "--host", "0.0.0.0", "--port", "8000"]
      readinessProbe:
        httpGet:
          path: /health
          port: default
"""


def test_placeholders_expand_as_the_shell_would() -> None:
    env = {"SET": "value", "EMPTY": ""}
    assert expand_text('${COMMUNICATION_TYPE:-"\\"hpull://\\""}', {}) == "hpull://"
    assert expand_text('${COMPRESS_OPTIONS:-"{}"}', {}) == "{}"
    assert expand_text('${FORMAT:-"JPEG"}', {}) == "JPEG"
    assert expand_text("${SET:-other}", env) == "value"
    assert expand_text("${EMPTY:-fallback}", env) == "fallback"
    assert expand_text("${EMPTY-fallback}", env) == ""
    assert expand_text("x-${SET}-y", env) == "x-value-y"
    assert expand_text("$(KEEP) $KEEP", env) == "$(KEEP) $KEEP"
    with pytest.raises(
        ValidationError, match=r"placeholder \$\{FORMAT\} \(at spec.env\) has no value: set FORMAT"
    ):
        expand_placeholders({"spec": {"env": "${FORMAT}"}}, {})


def test_runtime_spec_becomes_the_pod_ais_builds_with_its_options() -> None:
    (doc,) = load_spec_documents(RUNTIME_SPEC, env={})
    assert doc.kind == "runtime"
    assert doc.name == "md5-transformer-etl"
    assert doc.options == {
        "comm_type": HPULL,
        "arg_type": "fqn",
        "timeout": 300.0,
        "obj_timeout": 45.0,
        "direct_put": True,
    }
    (container,) = doc.pod["spec"]["containers"]
    assert container["image"] == "aistorage/transformer_md5:latest"
    assert container["ports"] == [{"name": "default", "containerPort": 8000}]
    assert container["readinessProbe"] == {"httpGet": {"path": "/health", "port": "default"}}
    assert container["command"][:2] == ["uvicorn", "fastapi_server:fastapi_app"]
    assert container["env"] == [{"name": "COMPRESS_OPTIONS", "value": "{}"}]
    assert yaml.safe_load(doc.text) == doc.pod


def test_a_runtime_spec_definition_is_a_pod_spec_definition() -> None:
    definition = EtlDefinition.from_mapping({"spec": RUNTIME_SPEC})
    assert definition.comm_type == HPULL
    assert definition.arg_type == "fqn"
    assert definition.timeout == 300.0
    assert definition.obj_timeout == 45.0
    assert definition.direct_put is True
    assert isinstance(definition.source, SpecSource)
    assert yaml.safe_load(definition.source.spec)["kind"] == "Pod"
    overridden = EtlDefinition.from_mapping({"spec": RUNTIME_SPEC, "comm_type": "hpush", "timeout": "1m"})
    assert (overridden.comm_type, overridden.timeout) == (HPUSH, 60.0)


def test_pod_annotations_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMUNICATION_TYPE", raising=False)
    definition = EtlDefinition.from_mapping({"spec": POD})
    assert (definition.comm_type, definition.timeout, definition.direct_put) == (HPULL, 300.0, True)
    monkeypatch.setenv("COMMUNICATION_TYPE", "hpush://")
    assert EtlDefinition.from_mapping({"spec": POD}).comm_type == HPUSH
    agreeing = EtlDefinition.from_mapping({"spec": POD, "comm_type": "hpush", "timeout": "5m"})
    assert agreeing.comm_type == HPUSH


def test_annotation_conflicting_with_an_option_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMMUNICATION_TYPE", raising=False)
    with pytest.raises(
        ValidationError,
        match="comm_type 'hpush://' conflicts with the Pod's annotation communication_type: 'hpull://'",
    ):
        EtlDefinition.from_mapping({"spec": POD, "comm_type": "hpush"})
    with pytest.raises(ValidationError, match="conflicts with the Pod's annotation wait_timeout: '5m'"):
        EtlDefinition.from_mapping({"spec": POD, "timeout": "45s"})


def test_messages_from_the_wire_take_the_annotation_too() -> None:
    pod = POD.replace('${COMMUNICATION_TYPE:-"\\"hpull://\\""}', "hpull://")
    msg = validate(InitSpecMsg(name="md5-etl", spec=pod))
    assert (msg.comm_type, msg.timeout) == (HPULL, 300.0)
    with pytest.raises(ValidationError, match="conflicts with the Pod's annotation communication_type"):
        validate(dataclasses.replace(msg, comm_type=HPUSH))


def test_several_documents_are_several_etls() -> None:
    text = RUNTIME_SPEC + "---\n" + POD.replace("${COMMUNICATION_TYPE", "${NOPE_UNSET_VAR")
    docs = load_spec_documents(text, env={})
    assert [(d.name, d.kind, d.options["comm_type"]) for d in docs] == [
        ("md5-transformer-etl", "runtime", HPULL),
        ("transformer-md5", "pod", HPULL),
    ]
    with pytest.raises(ValidationError, match="the spec holds 2 ETL documents .*ais-etl init -f FILE"):
        EtlDefinition.from_mapping({"spec": text})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: x\nruntime:\n  image: i\ncomunication: hpull://\n",
            "unknown field(s) comunication in ETL runtime spec",
        ),
        ("name: x\nruntime:\n  image: ''\n", "runtime.image must be specified"),
        ("name: x\nruntime:\n  image: i\n  cmd: [a]\n", "unknown field(s) cmd in runtime"),
        (
            "name: x\nruntime:\n  image: i\n  command: python s.py\n",
            "runtime.command must be a list of strings",
        ),
        ("name: x\nruntime:\n  image: i\ninit_timeout: 30\n", "init_timeout must be a duration such as 45s"),
        ("name: x\nruntime:\n  image: i\nobj_timeout: soon\n", 'obj_timeout: time: invalid duration "soon"'),
        (
            "name: x\nruntime:\n  image: i\nsupport_direct_put: maybe\n",
            "support_direct_put must be true or false",
        ),
        (
            "name: x\nruntime:\n  image: i\n  env:\n  - name: N\n    value: 3\n",
            "the value of 'N' must be a string",
        ),
        ("name: x\nimage: i\n", "unknown document (missing 'runtime' or 'spec'"),
        (POD.replace('"true"', "maybe"), 'annotation support_direct_put must be "true" or "false"'),
        (
            POD.replace("wait_timeout: 5m", "wait_timeout: 5"),
            "annotation wait_timeout must be a string, got int 5",
        ),
        (
            POD.replace("wait_timeout: 5m", 'wait_timeout: "5"'),
            'annotation wait_timeout: time: invalid duration "5"',
        ),
    ],
)
def test_bad_spec_files_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValidationError) as err:
        load_spec_documents(text, env={"COMMUNICATION_TYPE": "hpull://"})
    assert message in str(err.value)


def test_plain_pod_specs_are_kept_verbatim() -> None:
    plain = POD.replace('${COMMUNICATION_TYPE:-"\\"hpull://\\""}', "hpull://")
    assert EtlDefinition.from_mapping({"spec": plain}).source == SpecSource(plain)


def test_a_runtime_spec_dict_from_the_api_is_read_the_same() -> None:
    as_dict = yaml.safe_load(RUNTIME_SPEC.replace('${COMPRESS_OPTIONS:-"{}"}', "'{}'"))
    from_dict = EtlDefinition.from_mapping({"spec": as_dict})
    from_text = EtlDefinition.from_mapping({"spec": RUNTIME_SPEC})
    assert from_dict == from_text
