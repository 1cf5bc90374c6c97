"""ETL metadata (§7.1): versioning (deletes bump it, a deliberate fix) and the JSON form."""

from __future__ import annotations

import json

import pytest

from airflow_ais_etl.etl.constants import HPUSH
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.md import EtlMD
from airflow_ais_etl.etl.msg import InitCodeMsg, InitSpecMsg, to_wire

CODE = InitCodeMsg(name="md5-etl", comm_type=HPUSH, timeout=45, code="x", runtime="python3.11v2")
SPEC = InitSpecMsg(name="spec-etl", comm_type=HPUSH, timeout=45, spec="kind: Pod\n")


def test_add_get_delete_and_versions() -> None:
    md = EtlMD()
    assert (md.version, md.names(), str(md)) == (0, [], "EtlMD v0(0)")
    md.add(CODE)
    md.add(SPEC)
    md.add(CODE)  # overwrite still bumps
    assert md.version == 3
    assert md.names() == ["md5-etl", "spec-etl"]
    assert md.get("md5-etl") == CODE
    assert md.get("nope") is None
    assert str(md) == "EtlMD v3(2)"
    assert md.delete("spec-etl") is True
    assert md.version == 4
    assert md.delete("spec-etl") is False
    assert md.version == 4
    assert str(md) == "EtlMD v4(1)"


def test_json_shape_double_encodes_the_type() -> None:
    md = EtlMD()
    md.add(CODE)
    md.add(SPEC)
    text = md.to_json()
    assert '"type": "\\"spec\\""' in text
    assert '"type": "\\"code\\""' in text
    data = json.loads(text)
    assert data["version"] == 2
    assert data["etls"]["md5-etl"] == {"type": '"code"', "msg": to_wire(CODE)}
    assert "ext" not in data


def test_round_trip() -> None:
    md = EtlMD()
    md.add(CODE)
    md.add(SPEC)
    back = EtlMD.from_json(md.to_json())
    assert back == md
    assert back.get("spec-etl") == SPEC


def test_plain_type_is_accepted_too() -> None:
    text = json.dumps({"version": 7, "etls": {"md5-etl": {"type": "code", "msg": to_wire(CODE)}}})
    md = EtlMD.from_json(text)
    assert (md.version, md.get("md5-etl")) == (7, CODE)


def test_type_decides_the_kind_not_the_keys() -> None:
    wire = to_wire(SPEC) | {"code": None}
    md = EtlMD.from_json(json.dumps({"version": 1, "etls": {"spec-etl": {"type": '"spec"', "msg": wire}}}))
    assert md.get("spec-etl") == SPEC


@pytest.mark.parametrize(
    ("type_value", "shown"),
    [('"pod"', "pod"), ("pod", "pod"), ('""', ""), (None, "")],
)
def test_unknown_type(type_value: str | None, shown: str) -> None:
    text = json.dumps({"version": 1, "etls": {"x": {"type": type_value, "msg": {}}}})
    with pytest.raises(ValidationError, match=f'^invalid InitMsg type "{shown}"$'):
        EtlMD.from_json(text)


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", '{"version": "1"}', '{"version": 1, "etls": []}', '{"etls": {"x": {"type": "code"}}}'],
)
def test_malformed(text: str) -> None:
    with pytest.raises(ValidationError):
        EtlMD.from_json(text)


def test_empty_and_missing_fields() -> None:
    assert EtlMD.from_json("{}") == EtlMD()
    assert EtlMD.from_json(b'{"version": 2, "etls": {}, "ext": {"x": 1}}') == EtlMD(version=2)


def test_extra_env_is_kept_per_etl_and_round_trips() -> None:
    md = EtlMD()
    md.add(InitSpecMsg(name="spec-etl", spec="x"), {"GREETING": "hi"})
    md.add(InitSpecMsg(name="other-etl", spec="y"))
    assert md.env_of("spec-etl") == {"GREETING": "hi"}
    assert md.env_of("other-etl") == {}
    back = EtlMD.from_json(md.to_json())
    assert back.env_of("spec-etl") == {"GREETING": "hi"}
    assert "env" not in json.loads(md.to_json())["etls"]["other-etl"]
    md.add(InitSpecMsg(name="spec-etl", spec="x"))  # re-added without env: forgotten
    assert md.env_of("spec-etl") == {}
    md.add(InitSpecMsg(name="spec-etl", spec="x"), {"A": "1"})
    assert md.delete("spec-etl")
    assert md.env_of("spec-etl") == {}


def test_bad_env_in_metadata_is_rejected() -> None:
    text = json.dumps(
        {
            "version": 1,
            "etls": {"spec-etl": {"type": "spec", "msg": {"id": "spec-etl", "spec": ""}, "env": {"A": 1}}},
        }
    )
    with pytest.raises(ValidationError, match="env must map names to strings"):
        EtlMD.from_json(text)
