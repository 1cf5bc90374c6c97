"""The server's pure parts: listen/token checks, AIS message parsing, transform options, list pages."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.storage.local import LocalBucket
from airflow_ais_etl.etl.aisspec import spec_document
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.serve.auth import authorized, check_listen, parse_listen
from airflow_ais_etl.serve.bucket_routes import list_page
from airflow_ais_etl.serve.buckets import parse_bck_path
from airflow_ais_etl.serve.errors import AisHttpError
from airflow_ais_etl.serve.etlmsg import parse_init
from airflow_ais_etl.serve.offline import options_of

if TYPE_CHECKING:
    from pathlib import Path


def test_listen_addresses_and_tokens() -> None:
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    for bad in ("127.0.0.1", ":80", "host:99999"):
        with pytest.raises(ValidationError):
            parse_listen(bad)
    check_listen("::1", "")
    check_listen("0.0.0.0", "tok")
    with pytest.raises(ValidationError, match="without a token"):
        check_listen("0.0.0.0", "")
    assert authorized(None, "")
    assert authorized("Bearer tok", "tok")
    assert not authorized("Bearer tok2", "tok")
    assert not authorized("Basic tok", "tok")


def test_runtime_spec_with_our_image_listens_on_the_pods_port() -> None:
    doc = {"name": "a-etl", "runtime": {"image": "airflow-ais-etl/runtime-python:3.11v2"}}
    env = spec_document(doc, env={}).pod["spec"]["containers"][0]["env"]
    assert {"name": "AIS_ETL_LISTEN_PORT", "value": "8000"} in env
    given = {"name": "a-etl", "runtime": {"image": "airflow-ais-etl/runtime-python:3.11v2", "env": [
        {"name": "AIS_ETL_LISTEN_PORT", "value": "9000"}]}}  # fmt: skip
    assert spec_document(given, env={}).pod["spec"]["containers"][0]["env"] == given["runtime"]["env"]
    other = {"name": "a-etl", "runtime": {"image": "example.com/x:1"}}
    assert "env" not in spec_document(other, env={}).pod["spec"]["containers"][0]


def test_init_messages_of_all_three_shapes() -> None:
    name, definition = parse_init(
        {"name": "spec-etl", "communication": "hpull://", "obj_timeout": "10s", "runtime": {"image": "img:1"}}
    )
    assert (name, definition.kind, definition.comm_type, definition.obj_timeout) == (
        "spec-etl",
        "spec",
        "hpull://",
        10,
    )
    code = base64.b64encode(b"def transform(d):\n    return d\n").decode()
    name, definition = parse_init({"id": "code-etl", "code": code, "runtime": "python3.11v2"})
    assert (name, definition.kind) == ("code-etl", "code")
    with pytest.raises(ValidationError, match="name is missing"):
        parse_init({"runtime": {"image": "img:1"}})
    with pytest.raises(ValidationError, match="JSON object"):
        parse_init(["x"])


def test_transform_options_from_ais_messages() -> None:
    opts = options_of(
        {"id": "e", "prefix": "p/", "prepend": "x-", "ext": {"a": "b"}, "num-workers": -1, "coer": True}
    )
    assert (opts.prefix, opts.prepend, opts.ext, opts.num_workers, opts.continue_on_error) == (
        "p/", "x-", {"a": "b"}, 1, True
    )  # fmt: skip
    assert options_of({"id": "e", "request_timeout": "30s"}).request_timeout == 30
    with pytest.raises(ValidationError, match="unknown field"):
        options_of({"id": "e", "bogus": 1})
    with pytest.raises(ValidationError, match="remote buckets"):
        options_of({"id": "e", "latest-ver": True})
    assert parse_bck_path("ais/@#/dst/") == ("ais", "dst")
    with pytest.raises(AisHttpError):
        parse_bck_path("dst")


def test_list_pages_follow_the_continuation_token(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"o{i}").write_bytes(b"x" * i)
    bucket = LocalBucket(str(tmp_path))
    first = list_page(bucket, {"pagesize": 2})
    assert [e["n"] for e in first["Entries"]] == ["o0", "o1"]
    assert first["ContinuationToken"] == "o1"
    assert first["UUID"]
    rest = list_page(bucket, {"pagesize": 10, "continuation_token": "o1", "uuid": first["UUID"]})
    assert [(e["n"], e["s"]) for e in rest["Entries"]] == [("o2", 2), ("o3", 3), ("o4", 4)]
    assert rest["ContinuationToken"] == ""
    assert rest["UUID"] == first["UUID"]
