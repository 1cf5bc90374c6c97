"""Init-code template (§2.1–§2.2 with our changes), spec parsing (§1.9) and pod names (§1.2)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from airflow_ais_etl.etl.constants import COMM_TYPES, HPULL, HPUSH, IO
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.msg import InitCodeMsg
from airflow_ais_etl.etl.podcheck import parse_pod_spec
from airflow_ais_etl.etl.podspec import label_value, pod_name
from airflow_ais_etl.etl.podtemplate import IO_CODE_COMMAND, code_env, code_pod_spec, load_template
from airflow_ais_etl.etl.runtimes import (
    RUNTIME_IMAGE_REPO,
    RUNTIME_SERVER_COMMAND,
    RUNTIME_UID,
    RUNTIMES,
    is_runtime_image,
)
from airflow_ais_etl.etl.validation import validate

DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
ENV_ORDER = [
    "MOD_NAME",
    "FUNC_TRANSFORM",
    "COMM_TYPE",
    "CHUNK_SIZE",
    "ARG_TYPE",
    "FLAGS",
    "PYTHONPATH",
    "AIS_ETL_CODE_DIR",
    "POD_IP",
    "AIS_ETL_LISTEN_PORT",
    "HOME",
    "TMPDIR",
]


def msg(**kw: object) -> InitCodeMsg:
    fields: dict[str, object] = {"name": "md5-etl", "code": "def transform(b):\n    return b\n"}
    fields["runtime"] = "python3.11v2"
    fields.update(kw)
    return validate(InitCodeMsg(**fields))  # type: ignore[arg-type,return-value]


def env_of(container: dict[str, object]) -> dict[str, object]:
    return {e["name"]: e.get("value") for e in container["env"]}  # type: ignore[attr-defined]


# -- runtimes -------------------------------------------------------------------------------------------


def test_runtimes() -> None:
    assert sorted(RUNTIMES) == ["python3.10v2", "python3.11v2", "python3.12v2", "python3.13v2"]
    rt = RUNTIMES["python3.11v2"]
    assert (rt.name, rt.python_version, rt.image, rt.template) == (
        "python3.11v2",
        "3.11",
        "airflow-ais-etl/runtime-python:3.11v2",
        "runtime.yaml",
    )
    assert RUNTIME_SERVER_COMMAND == ["python", "-m", "airflow_ais_etl.runtime"]


@pytest.mark.parametrize(
    ("image", "ours"),
    [
        ("airflow-ais-etl/runtime-python:3.11v2", True),
        (RUNTIME_IMAGE_REPO, True),
        ("localhost:5000/airflow-ais-etl/runtime-python:3.12v2", True),
        ("airflow-ais-etl/runtime-python@sha256:abc", True),
        ("aistorage/runtime_python:3.11v2", False),
        ("evil/airflow-ais-etl/runtime-python-x:1", False),
        ("localhost:5000/other:3.11v2", False),
    ],
)
def test_is_runtime_image(image: str, ours: bool) -> None:
    assert is_runtime_image(image) is ours


# -- template -------------------------------------------------------------------------------------------


def test_load_template() -> None:
    text = load_template("runtime.yaml")
    assert yaml.safe_load(text)["kind"] == "Pod"


@pytest.mark.parametrize("name", ["", "../pyproject.toml", ".hidden", "a/b.yaml"])
def test_load_template_rejects_paths(name: str) -> None:
    with pytest.raises(ValidationError):
        load_template(name)


def test_load_template_missing() -> None:
    with pytest.raises(FileNotFoundError):
        load_template("nope.yaml")


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
@pytest.mark.parametrize("comm", COMM_TYPES)
def test_code_pod_spec_shape(runtime: str, comm: str) -> None:
    pod = code_pod_spec(msg(runtime=runtime, comm_type=comm))
    assert (pod["apiVersion"], pod["kind"], pod["metadata"]["name"]) == ("v1", "Pod", "md5-etl")
    (main,) = pod["spec"]["containers"]
    (init,) = pod["spec"]["initContainers"]
    image = RUNTIMES[runtime].image
    # One pull policy for both containers of one image: a side-loaded image must serve both.
    assert (main["name"], main["image"], main["imagePullPolicy"]) == ("server", image, "IfNotPresent")
    assert (init["name"], init["image"], init["imagePullPolicy"]) == ("server-deps", image, "IfNotPresent")
    assert main["command"] == (IO_CODE_COMMAND if comm == IO else RUNTIME_SERVER_COMMAND)
    assert main["ports"] == [{"name": "default", "containerPort": 8080}]
    assert main["readinessProbe"] == {"httpGet": {"path": "/health", "port": "default"}}
    assert [e["name"] for e in main["env"]] == ENV_ORDER
    env = env_of(main)
    assert env["COMM_TYPE"] == comm
    assert (env["MOD_NAME"], env["PYTHONPATH"], env["AIS_ETL_CODE_DIR"]) == ("code", "/runtime", "/code")
    assert env["AIS_ETL_LISTEN_PORT"] == "8080"
    assert (env["HOME"], env["TMPDIR"]) == ("/scratch", "/scratch")
    pod_ip = next(e for e in main["env"] if e["name"] == "POD_IP")
    assert pod_ip == {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    assert {m["name"]: m["mountPath"] for m in main["volumeMounts"]} == {
        "code": "/code",
        "runtime": "/runtime",
        "scratch": "/scratch",
    }
    assert {m["name"]: m["mountPath"] for m in init["volumeMounts"]} == {
        "code": "/dst",
        "runtime": "/runtime",
        "scratch": "/scratch",
    }
    assert pod["spec"]["volumes"] == [
        {"name": name, "emptyDir": {}} for name in ("code", "runtime", "scratch")
    ]
    assert pod["spec"]["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": RUNTIME_UID,
        "runAsGroup": RUNTIME_UID,
        "fsGroup": RUNTIME_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for container in (main, init):
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
    assert "<" not in json.dumps(pod).replace("\\u003c", "")


def test_io_command_is_the_reference_single_element_form() -> None:
    assert IO_CODE_COMMAND == ['python -m airflow_ais_etl.runtime.iomain "$AIS_ETL_CODE_DIR/code.py"']


def test_placeholders_for_zero_values_are_present_and_empty() -> None:
    env = env_of(code_pod_spec(msg(chunk_size=0, flags=0, arg_type=""))["spec"]["containers"][0])
    assert (env["CHUNK_SIZE"], env["FLAGS"], env["ARG_TYPE"]) == ("", "", "")


def test_chunk_size_and_flags_are_strings() -> None:
    pod = code_pod_spec(msg(chunk_size=65536, flags=3, arg_type="fqn", comm_type=HPULL))
    env = env_of(pod["spec"]["containers"][0])
    assert (env["CHUNK_SIZE"], env["FLAGS"], env["ARG_TYPE"]) == ("65536", "3", "fqn")
    assert '"value": "65536"' in json.dumps(pod)
    assert yaml.safe_load(yaml.safe_dump(pod)) == pod  # stays a string through YAML


@pytest.mark.parametrize("func", ["true", "123", "null", "a: b #c", "yes", "{x}", "'q'"])
def test_function_name_cannot_break_the_manifest(func: str) -> None:
    # validate() refuses such names; the template must be safe even for unvalidated messages.
    raw = InitCodeMsg(name="md5-etl", code="x", runtime="python3.11v2", transform=func, comm_type=HPUSH)
    pod = code_pod_spec(raw)
    assert env_of(pod["spec"]["containers"][0])["FUNC_TRANSFORM"] == func
    assert yaml.safe_load(yaml.safe_dump(pod)) == pod


def test_template_cache_is_not_mutated() -> None:
    first = code_pod_spec(msg(transform="first"))
    first["spec"]["containers"][0]["env"].clear()
    second = code_pod_spec(msg(transform="second"))
    assert env_of(second["spec"]["containers"][0])["FUNC_TRANSFORM"] == "second"


def test_code_pod_spec_unknown_runtime() -> None:
    with pytest.raises(ValidationError, match='unsupported runtime "python2"'):
        code_pod_spec(InitCodeMsg(name="md5-etl", code="x", runtime="python2"))


def test_code_env() -> None:
    assert code_env(msg(dependencies=None)) == {
        "AISTORE_CODE": "def transform(b):\n    return b\n",
        "AISTORE_DEPS": "",
    }
    assert code_env(msg(dependencies="numpy\n"))["AISTORE_DEPS"] == "numpy\n"


def test_init_script_writes_byte_exact_and_installs_only_when_needed() -> None:
    script = code_pod_spec(msg())["spec"]["initContainers"][0]["command"]
    assert script[:2] == ["sh", "-c"]
    assert "printf '%s' \"$AISTORE_CODE\"" in script[2]
    assert "echo" not in script[2]
    assert "--disable-pip-version-check --no-input --no-cache-dir --target" in script[2]
    assert '[ -s "$dst/requirements.txt" ]' in script[2]


# -- parse_pod_spec ------------------------------------------------------------------------------------

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": []}}


def test_parse_yaml_json_and_bytes() -> None:
    assert parse_pod_spec(yaml.safe_dump(POD)) == POD
    assert parse_pod_spec(json.dumps(POD)) == POD
    assert parse_pod_spec(json.dumps(POD, indent="\t").encode()) == POD
    assert parse_pod_spec("{apiVersion: v1, kind: Pod}") == {"apiVersion": "v1", "kind": "Pod"}


def test_parse_takes_the_first_document() -> None:
    text = yaml.safe_dump(POD) + "---\nkind: Service\n---\n: : broken"
    assert parse_pod_spec(text) == POD


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("kind: Pod\n  bad: indent\n", r"failed to parse pod spec: .* at line 2, column 6"),
        ('{"kind": "Pod",', r"failed to parse pod spec: .* at line \d+, column \d+"),
        ("", "expected pod spec, got: empty document"),
        ("- a\n- b\n", "expected pod spec, got: list"),
        ("hello", "expected pod spec, got: str"),
        ("apiVersion: v1\n", "expected pod spec, got: no kind"),
        ("apiVersion: apps/v1\nkind: Deployment\n", "expected pod spec, got: Deployment"),
        ("apiVersion: v2\nkind: Pod\n", 'expected pod spec, got: Pod with apiVersion "v2"'),
        ("kind: Pod\n", 'expected pod spec, got: Pod with apiVersion ""'),
    ],
)
def test_parse_errors(text: str, pattern: str) -> None:
    with pytest.raises(ValidationError, match=pattern) as info:
        parse_pod_spec(text, etl_name="my-etl")
    assert info.value.etl_name == "my-etl"


def test_parse_non_utf8() -> None:
    with pytest.raises(ValidationError, match="not UTF-8"):
        parse_pod_spec(b"kind: \xff")


# -- names ----------------------------------------------------------------------------------------------


def test_pod_name_vector() -> None:
    assert pod_name("md5-etl", "AbC_12x") == "md5-etl-abc-12x"


@pytest.mark.parametrize(
    ("etl", "target"),
    [
        ("a" * 32, "t" * 40),
        ("123abc", "t1"),
        ("md5-etl", "Zürich.node"),
        ("md5-etl", "tgt-"),
        ("md5-etl", ""),
        ("md5-etl", "x" * 200),
        ("-abcdef", "t1"),
    ],
)
def test_pod_name_is_always_a_dns_label(etl: str, target: str) -> None:
    name = pod_name(etl, target)
    assert len(name) <= 63
    assert DNS1035.fullmatch(name), name
    assert pod_name(etl, target) == name  # stable


def test_pod_name_keeps_distinct_long_names_distinct() -> None:
    a = pod_name("a" * 32, "t" * 40 + "1")
    b = pod_name("a" * 32, "t" * 40 + "2")
    assert a != b
    assert a.startswith("a" * 32 + "-ttt")


def test_pod_name_substitutes_odd_characters() -> None:
    assert pod_name("md5-etl", "t.1") == "md5-etl-t-1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("AbC_12x", "AbC_12x"), ("node-1.example.com", "node-1.example.com"), ("", "")],
)
def test_label_value_keeps_valid_values(value: str, expected: str) -> None:
    assert label_value(value) == expected


@pytest.mark.parametrize("value", ["-x-", "a b", "x" * 64, "Zürich", "_a_", "..."])
def test_label_value_sanitises(value: str) -> None:
    out = label_value(value)
    assert len(out) <= 63
    assert re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", out)
    assert out
