"""Init messages: wire format (§1.5), discrimination (§1.7) and string forms (§1.10)."""

from __future__ import annotations

import base64
import json

import pytest

from airflow_ais_etl.etl.constants import (
    ARG_TYPES,
    COMM_TYPES,
    DEFAULT_TIMEOUT,
    HPULL,
    HPUSH,
    HREV,
    IO,
    MAX_CHUNK_SIZE,
)
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.msg import InitCodeMsg, InitSpecMsg, from_wire, normalize_comm_type, to_wire
from airflow_ais_etl.etl.validation import validate

CODE = 'def transform(data):\n    return data.upper()  # "\\n" stays\n'


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_constants() -> None:
    assert COMM_TYPES == (HPUSH, HPULL, HREV, IO) == ("hpush://", "hpull://", "hrev://", "io://")
    assert ARG_TYPES == ("", "url", "fqn")
    assert DEFAULT_TIMEOUT == 45.0
    assert MAX_CHUNK_SIZE == 1 << 20


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("hpush", "hpush://"),
        ("hpush://", "hpush://"),
        ("io", "io://"),
        ("", ""),
        (" hpull ", "hpull://"),
    ],
)
def test_normalize_comm_type(given: str, normalized: str) -> None:
    assert normalize_comm_type(given) == normalized


def test_code_to_wire_keys_and_encoding() -> None:
    msg = InitCodeMsg(
        name="md5-etl",
        comm_type=HPUSH,
        timeout=300,
        code=CODE,
        dependencies="numpy==2.0\n",
        runtime="python3.11v2",
        chunk_size=32768,
    )
    wire = to_wire(msg)
    assert list(wire) == [
        "id",
        "communication",
        "argument",
        "timeout",
        "code",
        "dependencies",
        "runtime",
        "funcs",
        "chunk_size",
        "flags",
    ]
    assert wire["timeout"] == "5m"
    assert base64.b64decode(wire["code"]).decode() == CODE
    assert base64.b64decode(wire["dependencies"]).decode() == "numpy==2.0\n"
    assert wire["funcs"] == {"transform": "transform"}
    assert (wire["chunk_size"], wire["flags"], wire["argument"]) == (32768, 0, "")
    json.dumps(wire)  # JSON-ready


def test_dependencies_none_and_empty_are_distinct_on_the_wire() -> None:
    assert to_wire(InitCodeMsg(name="abcdef", code="x"))["dependencies"] is None
    assert to_wire(InitCodeMsg(name="abcdef", code="x", dependencies=""))["dependencies"] == ""


def test_spec_to_wire() -> None:
    wire = to_wire(InitSpecMsg(name="spec-etl", comm_type=HPULL, timeout=45, spec="kind: Pod\n"))
    assert list(wire) == ["id", "communication", "argument", "timeout", "spec"]
    assert wire["timeout"] == "45s"
    assert base64.b64decode(wire["spec"]) == b"kind: Pod\n"


@pytest.mark.parametrize(
    "msg",
    [
        InitCodeMsg(name="md5-etl", comm_type=IO, timeout=90, code="ü ✓\n", runtime="python3.12v2", flags=3),
        InitCodeMsg(name="md5-etl", code=CODE, dependencies="", transform="fn", chunk_size=1),
        InitSpecMsg(name="spec-etl", comm_type=HREV, arg_type="", timeout=1.5, spec="apiVersion: v1\n"),
    ],
)
def test_round_trip(msg: InitCodeMsg | InitSpecMsg) -> None:
    assert from_wire(json.dumps(to_wire(msg))) == msg
    assert from_wire(json.dumps(to_wire(msg)).encode()) == msg
    assert from_wire(to_wire(msg)) == msg


def test_sdk_message_is_accepted() -> None:
    sdk = {
        "id": "md5-etl",
        "runtime": "python3.11v2",
        "communication": "hpush://",
        "timeout": "5m",
        "funcs": {"transform": "transform"},
        "code": b64(CODE),
        "dependencies": b64("cloudpickle==2.2.0"),
        "argument": "",
        "chunk_size": 32768,
    }
    msg = from_wire(json.dumps(sdk))
    assert isinstance(msg, InitCodeMsg)
    assert (msg.name, msg.timeout, msg.code, msg.dependencies, msg.chunk_size, msg.flags) == (
        "md5-etl",
        300.0,
        CODE,
        "cloudpickle==2.2.0",
        32768,
        0,
    )


def test_field_names_are_case_insensitive() -> None:
    data = {
        "ID": "md5-etl",
        "Communication": "hpull://",
        "ARGUMENT": "url",
        "Timeout": "1m",
        "code": b64(CODE),
        "Runtime": "python3.10v2",
        "Funcs": {"Transform": "my_fn"},
        "Chunk_Size": 7,
        "FLAGS": 2,
    }
    msg = from_wire(data)
    assert isinstance(msg, InitCodeMsg)
    assert (msg.name, msg.comm_type, msg.arg_type, msg.timeout) == ("md5-etl", HPULL, "url", 60.0)
    assert (msg.runtime, msg.transform, msg.chunk_size, msg.flags) == ("python3.10v2", "my_fn", 7, 2)


def test_exact_key_wins_over_case_variant() -> None:
    msg = from_wire({"id": "exact-name", "ID": "other-name", "code": b64("x")})
    assert msg.name == "exact-name"


def test_code_key_wins_even_when_null_then_code_is_empty() -> None:
    msg = from_wire({"id": "xyzxyz", "code": None, "spec": b64("kind: Pod")})
    assert isinstance(msg, InitCodeMsg)
    assert msg.code == ""
    with pytest.raises(ValidationError, match=r"^source code is empty"):
        validate(msg)


def test_spec_discrimination_is_case_sensitive() -> None:
    assert isinstance(from_wire({"id": "xyzxyz", "spec": b64("kind: Pod")}), InitSpecMsg)
    with pytest.raises(ValidationError, match=r"^invalid etl\.InitMsg: map\["):
        from_wire({"id": "xyzxyz", "Code": b64("x")})


def test_neither_code_nor_spec() -> None:
    with pytest.raises(ValidationError, match=r'^invalid etl\.InitMsg: map\[id:"xyzxyz"\]'):
        from_wire('{"id":"xyzxyz"}')


def test_missing_funcs_gives_empty_transform_like_the_reference() -> None:
    msg = from_wire({"id": "abcdef", "code": b64("x"), "runtime": "python3.11v2"})
    assert isinstance(msg, InitCodeMsg)
    assert msg.transform == ""
    assert msg.dependencies is None
    assert msg.timeout == 0.0


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ('{"id": "abcdef", "code": "eA==", "timeout": 45}', 'field "timeout" must be a duration string'),
        ('{"id": "abcdef", "code": "eA==", "timeout": ""}', 'invalid duration ""'),
        ('{"id": "abcdef", "code": "eA==", "timeout": "45"}', "missing unit"),
        ('{"id": "abcdef", "code": "not base64!"}', 'field "code" is not valid base64'),
        ('{"id": "abcdef", "code": "/w=="}', 'field "code" does not decode as UTF-8'),
        ('{"id": "abcdef", "spec": 5}', 'field "spec" must be a base64 string'),
        ('{"id": 5, "code": "eA=="}', 'field "id" must be a string'),
        ('{"id": "abcdef", "code": "eA==", "chunk_size": "5"}', 'field "chunk_size" must be an integer'),
        ('{"id": "abcdef", "code": "eA==", "chunk_size": 1.5}', 'field "chunk_size" must be an integer'),
        ('{"id": "abcdef", "code": "eA==", "flags": true}', 'field "flags" must be an integer'),
        ('{"id": "abcdef", "code": "eA==", "funcs": "transform"}', 'field "funcs" must be an object'),
        ("[1, 2]", "expected a JSON object, got list"),
        ("{not json", "invalid etl.InitMsg: Expecting property name"),
    ],
)
def test_decode_errors(data: str, pattern: str) -> None:
    with pytest.raises(ValidationError) as info:
        from_wire(data)
    assert pattern in str(info.value)


def test_non_utf8_bytes() -> None:
    with pytest.raises(ValidationError, match="not UTF-8"):
        from_wire(b"\xff\xfe")


def test_string_forms() -> None:
    assert str(InitCodeMsg(name="md5-etl", comm_type=HPUSH, runtime="python3.11v2")) == (
        "init-code[md5-etl-hpush://--python3.11v2]"
    )
    assert (
        str(InitSpecMsg(name="md5-etl", comm_type=HPULL, arg_type="fqn")) == "init-spec[md5-etl-hpull://-fqn]"
    )


def test_kind() -> None:
    assert InitCodeMsg(name="abcdef").kind == "code"
    assert InitSpecMsg(name="abcdef").kind == "spec"


def test_messages_are_frozen() -> None:
    msg = InitCodeMsg(name="abcdef")
    with pytest.raises(AttributeError):
        msg.name = "other"  # type: ignore[misc]
