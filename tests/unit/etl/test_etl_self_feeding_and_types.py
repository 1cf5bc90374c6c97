"""Jobs that would feed themselves are refused; wrong Python types get the model's errors."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.dataplane.overlap import check_separate
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.service import AisEtl

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("src", "dst", "why"),
    [
        ("/data/in", "/data/in", "same location"),
        ("/data/in", "/data/in/out", "destination is inside the source"),
        ("/data/in/sub", "/data/in", "source is inside the destination"),
        ("file:///data/in", "/data/in/out/", "destination is inside the source"),
        ("s3://bkt", "s3://bkt/out", "destination is inside the source"),
        ("s3://bkt/a/b", "s3://bkt/a", "source is inside the destination"),
        ("gs://bkt/x", "GS://bkt/x/", "same location"),
    ],
)
def test_overlapping_locations_are_refused(src: str, dst: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why) as err:
        check_separate(src, dst)
    assert "choose a destination outside the source" in str(err.value)


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        ("/data/in", "/data/input"),
        ("/data/in", "/data/out"),
        ("s3://bkt/out", "s3://bkt/output"),
        ("s3://a", "s3://b"),
        ("s3://a", "gs://a"),
    ],
)
def test_separate_locations_pass(src: str, dst: str) -> None:
    check_separate(src, dst)


def test_symlinks_are_resolved(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    os.symlink(tmp_path / "src", tmp_path / "alias")
    with pytest.raises(ValidationError, match="inside the source"):
        check_separate(str(tmp_path / "alias"), str(tmp_path / "src" / "out"))
    check_separate(str(tmp_path / "alias"), str(tmp_path / "dst"))


def test_different_connections_may_name_the_same_url() -> None:
    check_separate("s3://bkt", "s3://bkt/out", same_connection=False)


def test_the_job_is_refused_before_anything_runs(tmp_path: Path) -> None:
    from airflow_ais_etl.dataplane.engine import run_offline
    from airflow_ais_etl.etl.msg import InitCodeMsg

    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    msg = InitCodeMsg(name="abc-etl", code="x")
    with pytest.raises(ValidationError, match="inside the source"):
        run_offline(None, msg, str(src), str(src / "out"), OfflineOptions())  # type: ignore[arg-type]
    assert sorted(p.name for p in src.iterdir()) == ["a.txt"]  # nothing created


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_workers": "8"}, "num_workers must be an integer, got str '8'"),
        ({"prefix": 3}, "prefix must be a string, got int 3"),
        ({"objects": ("a", 1)}, r"objects\[1\] must be a string, got int 1"),
        ({"objects": "a,b"}, "objects must be a list of strings"),
        ({"dry_run": "yes"}, "dry_run must be a bool"),
        ({"request_timeout": "soon"}, "request_timeout must be a number of seconds"),
        ({"ext": {"jpg": None}}, r"ext\['jpg'\] must be a string"),
    ],
)
def test_offline_options_of_the_wrong_type(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OfflineOptions(**options).validate()


def test_api_arguments_of_the_wrong_type(tmp_path: Path) -> None:
    api = AisEtl.local(str(tmp_path / "home"))
    with pytest.raises(ValidationError, match=r"dependencies\[0\] must be a string, got int 1"):
        api.init_code("abc-etl", "def transform(b):\n    return b\n", dependencies=[1, 2])
    with pytest.raises(ValidationError, match="name must be a string, got int 5"):
        api.init_code(5, "def transform(b):\n    return b\n")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="ETL name must be a string"):
        api.transform_bucket(7, "/a", "/b")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="src must be a string, got int 1"):
        api.transform_bucket("abc-etl", 1, "/b")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="options must be OfflineOptions, got dict"):
        api.transform_bucket("abc-etl", "/a", "/b", {"prefix": "x"})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="obj must be a string"):
        api.transform_object("abc-etl", "/a", None)  # type: ignore[arg-type]
