"""Error tree and the reference's error rendering (§7.9)."""

from __future__ import annotations

import pickle

import pytest

from airflow_ais_etl.etl.errors import (
    AbortError,
    AisEtlError,
    EtlError,
    EtlExistsError,
    EtlNotFoundError,
    PodGoneError,
    PodStartError,
    StorageError,
    TransformError,
    ValidationError,
    go_quote,
)


def test_reference_vector() -> None:
    err = EtlError("boom", target="t1", etl_name="e", pod_name="", svc_name="s")
    assert str(err) == '[t[t1],etl="e",service="s"] boom'


def test_no_context_is_just_the_reason() -> None:
    assert str(EtlError("boom")) == "boom"
    assert EtlError("boom").context == ""


def test_all_context_parts_in_order() -> None:
    err = EtlError("r", etl_name="md5-etl", target="Abc123", pod_name="md5-etl-abc123", svc_name="svc")
    assert str(err) == '[t[Abc123],etl="md5-etl",pod="md5-etl-abc123",service="svc"] r'


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("abc", '"abc"'),
        ("", '""'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("l1\nl2\t", '"l1\\nl2\\t"'),
        ("\x01", '"\\x01"'),
        ("\x7f", '"\\x7f"'),
        ("ü€", '"ü€"'),
        ("\u200b", '"\\u200b"'),
    ],
)
def test_go_quote(value: str, quoted: str) -> None:
    assert go_quote(value) == quoted


def test_with_context_fills_only_empty_values_and_never_clears() -> None:
    err = EtlError("boom", etl_name="e")
    new = err.with_context(target="t1", etl_name="", pod_name="p")
    assert new is not err
    assert (new.etl_name, new.target, new.pod_name, new.svc_name) == ("e", "t1", "p", "")
    assert (err.target, err.pod_name) == ("", "")
    assert str(new) == '[t[t1],etl="e",pod="p"] boom'


def test_with_context_overrides_with_non_empty_values() -> None:
    assert EtlError("x", etl_name="a").with_context(etl_name="b").etl_name == "b"


def test_with_context_rejects_unknown_keys() -> None:
    with pytest.raises(TypeError, match="bogus"):
        EtlError("x").with_context(bogus="1")


@pytest.mark.parametrize(
    ("err", "attrs"),
    [
        (
            PodStartError("init failed", exit_code=3, log_tail="pip: error"),
            {"exit_code": 3, "log_tail": "pip: error"},
        ),
        (
            TransformError("bad object", object_name="a/b.jpg", status=500),
            {"object_name": "a/b.jpg", "status": 500},
        ),
        (AbortError("etl job aborted: target t2 left", cause="target t2 left"), {"cause": "target t2 left"}),
        (ValidationError("bad name"), {}),
        (EtlNotFoundError("t[t1]: etl job x does not exist"), {}),
        (EtlExistsError("etl[x] already exists"), {}),
        (PodGoneError("pod vanished"), {}),
    ],
)
def test_subclass_attributes_survive_with_context_and_pickle(err: EtlError, attrs: dict[str, object]) -> None:
    new = err.with_context(target="t9", svc_name="s")
    assert type(new) is type(err)
    assert new.reason == err.reason
    for key, value in attrs.items():
        assert getattr(new, key) == value
    clone = pickle.loads(pickle.dumps(new))
    assert type(clone) is type(err)
    assert str(clone) == str(new)
    for key, value in attrs.items():
        assert getattr(clone, key) == value
    assert clone.target == "t9"


def test_hierarchy() -> None:
    assert issubclass(ValidationError, ValueError)
    assert issubclass(ValidationError, EtlError)
    for cls in (EtlNotFoundError, EtlExistsError, PodStartError, PodGoneError, TransformError, AbortError):
        assert issubclass(cls, EtlError)
    assert issubclass(EtlError, AisEtlError)
    assert issubclass(StorageError, AisEtlError)
    assert not issubclass(StorageError, EtlError)


def test_validation_error_is_caught_as_value_error() -> None:
    with pytest.raises(ValueError, match="nope"):
        raise ValidationError("nope", etl_name="e")


def test_optional_attributes_default() -> None:
    err = PodStartError("x")
    assert err.exit_code is None
    assert err.log_tail == ""
    terr = TransformError("y")
    assert (terr.object_name, terr.status) == ("", None)
    assert AbortError("z").cause == ""
