"""``obj_timeout``: AIS's per-object limit, from every door into the one init-message field."""

from __future__ import annotations

import pytest

from airflow_ais_etl.cli import build_parser, definition_from_flags
from airflow_ais_etl.dataplane.engine import job_fingerprint
from airflow_ais_etl.etl.definition import EtlDefinition
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.msg import DEFAULT_OBJ_TIMEOUT, from_wire, obj_timeout_of, to_wire
from airflow_ais_etl.etl.validation import validate

CODE = "def transform(data):\n    return data\n"


def _msg(**options: object):  # type: ignore[no-untyped-def]
    return validate(EtlDefinition.from_mapping({"code": CODE, **options}, kind="code").to_msg("abc-etl"))


@pytest.mark.parametrize(
    ("given", "seconds"), [("45s", 45.0), ("2m", 120.0), ("1.5s", 1.5), (30, 30.0), ("30", 30.0)]
)
def test_durations_and_seconds_are_accepted(given: object, seconds: float) -> None:
    msg = _msg(obj_timeout=given)
    assert msg.obj_timeout == seconds
    assert obj_timeout_of(msg) == seconds


def test_default_is_45s_and_is_not_written_on_the_wire() -> None:
    msg = _msg()
    assert msg.obj_timeout == 0.0
    assert obj_timeout_of(msg) == DEFAULT_OBJ_TIMEOUT == 45.0
    assert "obj_timeout" not in to_wire(msg)  # MD stored before the field existed compares equal


def test_wire_round_trip_uses_ais_duration_strings() -> None:
    msg = _msg(obj_timeout="2m")
    wire = to_wire(msg)
    assert wire["obj_timeout"] == "2m"
    assert from_wire(wire).obj_timeout == 120.0
    with pytest.raises(ValidationError, match='field "obj_timeout" must be a duration string'):
        from_wire({**wire, "obj_timeout": 5})


def test_obj_timeout_does_not_change_the_resume_fingerprint() -> None:
    assert job_fingerprint(_msg(obj_timeout="2m")) == job_fingerprint(_msg())


@pytest.mark.parametrize("bad", ["-1s", "soon", [1], True])
def test_bad_values_are_refused_clearly(bad: object) -> None:
    with pytest.raises(ValidationError, match="obj_timeout"):
        _msg(obj_timeout=bad)


def test_cli_flag_takes_units() -> None:
    args = build_parser().parse_args(
        ["init", "code", "--name", "abc-etl", "--from-file", "-", "--obj-timeout", "2m"]
    )
    args.from_file = __file__  # any readable file stands for the code here
    assert definition_from_flags(args).obj_timeout == 120.0
    args = build_parser().parse_args(["init", "code", "--name", "abc-etl", "--from-file", __file__])
    assert definition_from_flags(args).obj_timeout == 0.0
