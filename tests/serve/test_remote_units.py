"""Configured object-store buckets without a server: the flag and file syntax, and what BucketRoot
lets through (only configured buckets; object names validated; never created or destroyed)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.etl.errors import StorageError, ValidationError
from airflow_ais_etl.serve.buckets import BucketRoot
from airflow_ais_etl.serve.errors import AisHttpError
from airflow_ais_etl.serve.ranges import cut, parse_range
from airflow_ais_etl.serve.remotes import RemoteBucket, load_bucket_map, parse_bucket_url

if TYPE_CHECKING:
    from pathlib import Path


def test_bucket_url_syntax_and_provider_aliases() -> None:
    assert parse_bucket_url("aws/imgs=s3://b/p/,conn_id=aws_x") == RemoteBucket(
        "aws", "imgs", "s3://b/p", "aws_x"
    )
    assert parse_bucket_url("gs/out=gs://o") == RemoteBucket("gcp", "out", "gs://o", None)
    for bad, why in (
        ("aws/imgs", "PROVIDER/NAME=URL"),
        ("imgs=s3://b", "must be PROVIDER/NAME"),
        ("aws/imgs=/tmp/dir", "is not a URL"),
        ("aws/imgs=s3://b,conn_id=a,region=x", "only one option"),
    ):
        with pytest.raises(ValidationError, match=why):
            parse_bucket_url(bad)


def test_bucket_map_file(tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"aws/a": "s3://a", "azure/b": {"url": "abfs://c/b", "conn_id": "az"}}))
    assert load_bucket_map(str(path)) == [
        RemoteBucket("aws", "a", "s3://a"),
        RemoteBucket("azure", "b", "abfs://c/b", "az"),
    ]
    path.write_text(json.dumps({"aws/a": {"url": "s3://a", "region": "x"}}))
    with pytest.raises(ValidationError, match="must map to a URL"):
        load_bucket_map(str(path))
    with pytest.raises(ValidationError, match="cannot read it"):
        load_bucket_map(str(tmp_path / "missing.json"))


def test_only_configured_buckets_are_reachable_and_names_are_checked(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    root = BucketRoot(tmp_path / "root", [RemoteBucket("aws", "r", f"local://{store}")])
    bucket = root.open("r", "s3")
    bucket.write_bytes("a/b.txt", b"x")
    assert (store / "a" / "b.txt").read_bytes() == b"x"
    assert root.location("r", "aws") == (f"local://{store}", None)
    with pytest.raises(ValidationError, match="could leave the bucket"):
        bucket.write_bytes("../escape", b"x")
    assert not (tmp_path / "escape").exists()
    with pytest.raises(AisHttpError, match="aws://other is not served.*--bucket-url"):
        root.open("other", "aws")
    with pytest.raises(AisHttpError, match="does not destroy it"):
        root.destroy("r", "aws")
    with pytest.raises(AisHttpError, match="does not create it"):
        root.create("r", "aws")
    assert root.create("r", "aws", exist_ok=True).url == f"local://{store}"
    with pytest.raises(ValidationError, match="configured twice"):
        BucketRoot(
            tmp_path / "root", [RemoteBucket("aws", "r", "s3://a"), RemoteBucket("aws", "r", "s3://b")]
        )


def test_single_ranges_are_cut_from_a_chunk_stream() -> None:
    data = bytes(range(50))
    chunks = [data[i : i + 7] for i in range(0, 50, 7)]
    for header, want in (("bytes=0-0", data[:1]), ("bytes=5-20", data[5:21]), ("bytes=-4", data[-4:])):
        start, end = parse_range(header, len(data))
        assert b"".join(cut(chunks, start, end)) == want
    assert parse_range("bytes=40-99", 50) == (40, 50)
    assert parse_range("bytes=-99", 50) == (0, 50)
    for bad, status in (("bytes=50-", 416), ("bytes=0-1,4-5", 400), ("items=0-1", 400), ("bytes=-", 400)):
        with pytest.raises(AisHttpError) as exc:
            parse_range(bad, 50)
        assert exc.value.status == status


def test_configured_buckets_are_opened_up_front_and_a_broken_one_is_reported(tmp_path: Path) -> None:
    """The server opens them before it says it listens: the first request pays no Airflow import."""
    root = BucketRoot(
        tmp_path / "buckets",
        [parse_bucket_url(f"aws/good=local://{tmp_path}"), parse_bucket_url("gs/bad=nosuchproto://b/p")],
    )
    expected = (
        "gcp://bad (nosuchproto://b/p): bucket nosuchproto://b/p: cannot open it through Airflow object "
        "storage: Unsupported filesystem: 'nosuchproto'"
    )
    assert root.open_configured() == [expected]
    with pytest.raises(StorageError, match="Unsupported filesystem"):  # still served: requests say why
        root.open("bad", "gs")
