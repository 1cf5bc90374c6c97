"""The one ETL definition: built from loose arguments, checked with clear errors, turned into messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_ais_etl.etl.constants import DEFAULT_TIMEOUT, HPULL, HPUSH
from airflow_ais_etl.etl.definition import CODE_KEYS, SPEC_KEYS, CodeSource, EtlDefinition, SpecSource
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.msg import InitCodeMsg, InitSpecMsg, to_wire
from airflow_ais_etl.etl.runtimes import default_runtime
from airflow_ais_etl.etl.validation import validate

if TYPE_CHECKING:
    from pathlib import Path

CODE = "def transform(data):\n    return data.upper()\n"
SPEC = """apiVersion: v1
kind: Pod
metadata: {name: upper}
spec:
  containers:
    - name: server
      image: example.com/upper:1
      ports: [{name: default, containerPort: 8000}]
      readinessProbe: {httpGet: {path: /health, port: default}}
"""


def upper(data: bytes) -> bytes:
    return data.upper()


# ---------------------------------------------------------------------- valid definitions
def test_code_definition_from_a_mapping() -> None:
    definition = EtlDefinition.from_mapping(
        {
            "kind": "code",
            "code": CODE,
            "dependencies": ["numpy==2.0"],
            "runtime": "python3.12v2",
            "chunk_size": "65536",
            "comm_type": "hpull",
            "arg_type": "url",
            "timeout": "2m",
            "env": '{"GREETING": "hi", "N": 3}',
            "replace": "true",
        }
    )
    assert definition == EtlDefinition(
        CodeSource(CODE, dependencies="numpy==2.0\n", runtime="python3.12v2", chunk_size=65536),
        comm_type=HPULL,
        arg_type="url",
        timeout=120.0,
        env={"GREETING": "hi", "N": "3"},
        replace=True,
    )
    assert definition.kind == "code"


def test_defaults_match_the_model() -> None:
    definition = EtlDefinition.from_mapping({"code": CODE})
    assert definition == EtlDefinition(CodeSource(CODE))
    msg = definition.to_msg("upper-etl")
    assert msg == InitCodeMsg(
        name="upper-etl", comm_type=HPUSH, timeout=DEFAULT_TIMEOUT, code=CODE, runtime=default_runtime()
    )
    assert to_wire(msg)["timeout"] == "45s"
    assert validate(msg) == msg


def test_none_means_not_given() -> None:
    given = dict.fromkeys(CODE_KEYS)
    given["python_callable"] = upper
    definition = EtlDefinition.from_mapping(given, kind="code")
    assert definition.source == CodeSource(
        "def upper(data: bytes) -> bytes:\n    return data.upper()\n", "upper"
    )
    assert definition == EtlDefinition(definition.source)


def test_spec_definition_from_text_dict_or_file(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(SPEC)
    from_file = EtlDefinition.from_mapping({"spec": str(path), "comm_type": "hpull://"})
    assert from_file == EtlDefinition(SpecSource(SPEC), comm_type=HPULL)
    assert from_file.kind == "spec"
    msg = from_file.to_msg("upper-etl")
    assert isinstance(msg, InitSpecMsg)
    assert validate(msg).spec == SPEC
    from_dict = EtlDefinition.from_mapping({"kind": "spec", "spec": {"apiVersion": "v1", "kind": "Pod"}})
    assert from_dict.source == SpecSource("apiVersion: v1\nkind: Pod\n")


def test_seconds_and_durations_are_both_timeouts() -> None:
    for value, seconds in ((30, 30.0), ("30", 30.0), (" 1.5 ", 1.5), ("5m", 300.0), ("1h2m", 3720.0)):
        assert EtlDefinition.from_mapping({"code": CODE, "timeout": value}).timeout == seconds


def test_a_definition_is_hashable_and_comparable() -> None:
    one = EtlDefinition(CodeSource(CODE), env={"A": "1"})
    assert hash(one) == hash(EtlDefinition(CodeSource(CODE), env={"A": "1"}))
    assert one != EtlDefinition(CodeSource(CODE), env={"A": "2"})


# ---------------------------------------------------------------------- what is wrong, said clearly
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"code": CODE, "dependencies": [1, 2]}, r"dependencies\[0\] must be a string, got int 1"),
        ({"code": CODE, "dependencies": {"numpy": 1}}, "dependencies must be a list of strings, got dict"),
        ({"code": CODE, "chunk_size": "lots"}, "chunk_size must be an integer, got str 'lots'"),
        ({"code": CODE, "chunk_size": True}, "chunk_size must be an integer, got bool True"),
        ({"code": CODE, "env": ["A=1"]}, r"env must be a mapping of strings, got list \['A=1'\]"),
        ({"code": CODE, "env": {"A": {"b": 1}}}, r"env\['A'\] must be a string, got dict"),
        ({"code": CODE, "env": "{not json"}, "env must be a mapping or its JSON text"),
        ({"code": CODE, "replace": "maybe"}, "replace must be a bool"),
        ({"code": CODE, "timeout": "soon"}, 'timeout: time: invalid duration "soon"'),
        ({"code": CODE, "timeout": [45]}, "timeout: invalid duration of type list"),
        ({"code": CODE, "comm_type": 5}, "comm_type must be a string, got int 5"),
        ({"code": CODE, "arg_type": None, "runtime": 3.11}, "runtime must be a string, got float 3.11"),
        ({"code": CODE, "transform": 7}, "transform must be a function name, got int 7"),
        ({"code": CODE, "code_file": "/x.py"}, "exactly one of code, code_file or python_callable"),
        ({"kind": "code"}, "give exactly one of code, code_file or python_callable$"),
        ({"code": b"def transform(d): return d"}, "code must be the module's source text, got bytes"),
        ({"python_callable": "upper"}, "python_callable must be a function, got str 'upper'"),
        ({"python_callable": lambda d: d}, "cannot be a lambda"),
        ({"kind": "spec"}, "spec is required"),
        ({"kind": "spec", "spec": 42}, "spec must be a dict, YAML/JSON text or a file path, got int 42"),
        ({"kind": "zip", "code": CODE}, "kind must be 'code' or 'spec', got str 'zip'"),
    ],
)
def test_invalid_arguments(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EtlDefinition.from_mapping(data)


def test_unknown_keys_are_listed_with_the_allowed_ones() -> None:
    with pytest.raises(ValidationError) as err:
        EtlDefinition.from_mapping({"code": CODE, "comm": "hpull", "deps": "numpy"})
    assert str(err.value) == (
        "unknown argument(s) of a code ETL definition: comm, deps (allowed: kind, "
        + ", ".join(CODE_KEYS)
        + ")"
    )
    with pytest.raises(
        ValidationError, match=r"of a spec ETL definition: chunk_size \(allowed: kind, spec, "
    ):
        EtlDefinition.from_mapping({"spec": SPEC, "chunk_size": 64})
    assert SPEC_KEYS == (
        "spec",
        "comm_type",
        "arg_type",
        "timeout",
        "obj_timeout",
        "env",
        "pod_options",
        "replace",
        "protocol",
        "direct_put",
    )


def test_kind_must_agree_and_data_must_be_a_mapping() -> None:
    with pytest.raises(ValidationError, match="kind 'spec' does not match 'code'"):
        EtlDefinition.from_mapping({"kind": "spec", "spec": SPEC}, kind="code")
    with pytest.raises(ValidationError, match="must be a mapping of arguments, got list"):
        EtlDefinition.from_mapping([("code", CODE)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: CodeSource(b"x"), "code must be a string, got bytes"),  # type: ignore[arg-type]
        (lambda: CodeSource(CODE, chunk_size="64"), "chunk_size must be an integer, got str '64'"),  # type: ignore[arg-type]
        (lambda: SpecSource({"kind": "Pod"}), "spec must be a string, got dict"),  # type: ignore[arg-type]
        (lambda: EtlDefinition(CODE), "source must be a CodeSource or a SpecSource, got str"),  # type: ignore[arg-type]
        (lambda: EtlDefinition(CodeSource(CODE), env={"N": 3}), "env must map strings to strings"),  # type: ignore[dict-item]
        (lambda: EtlDefinition(CodeSource(CODE), timeout="45s"), "timeout must be a number of seconds"),  # type: ignore[arg-type]
        (lambda: EtlDefinition(CodeSource(CODE), replace="yes"), "replace must be a bool, got str"),  # type: ignore[arg-type]
    ],
)
def test_direct_construction_checks_types(build: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build()


def test_the_model_still_checks_values() -> None:
    for given, message in (
        ({"chunk_size": -1}, "chunk-size -1 is invalid"),
        ({"transform": "a b"}, "identifier"),
    ):
        definition = EtlDefinition.from_mapping({"code": CODE, **given})
        with pytest.raises(ValidationError, match=message):
            validate(definition.to_msg("upper-etl"))
    with pytest.raises(ValidationError, match="too short"):
        validate(EtlDefinition(CodeSource(CODE)).to_msg("etl"))
