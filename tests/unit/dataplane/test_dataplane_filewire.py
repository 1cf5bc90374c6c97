"""The file transport's pure parts: each object's path is what its own HTTP request would carry; the wire."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

import pytest

from airflow_ais_etl.cluster.base import BucketRef, PodEndpoint
from airflow_ais_etl.dataplane.filetransfer import request_path
from airflow_ais_etl.dataplane.podrequest import build_request
from airflow_ais_etl.etl.msg import InitMsg
from airflow_ais_etl.runtime.bucketfiles import process_umask
from airflow_ais_etl.runtime.filewire import (
    MAX_OBJECTS,
    Buckets,
    FileWireError,
    decode_answer,
    decode_hello,
    decode_request,
    encode_answer,
    encode_hello,
    encode_request,
    short_path,
)

NAMES = [
    "a.bin",
    "with space.bin",
    "ünïcödé",
    "per%cent",
    "hash#tag",
    "what?mark",
    "nested/dir/deep name",
    "+&=@$:",
]


@pytest.mark.parametrize("comm_type", ["hpush://", "hpull://", "hrev://"])
@pytest.mark.parametrize("name", NAMES)
def test_the_path_is_the_decoded_path_of_the_objects_own_request(comm_type: str, name: str) -> None:
    msg = InitMsg(name="fd-wire", comm_type=comm_type)
    ref = BucketRef("ais", "b-0123456789abcdef")
    _, url = build_request(
        PodEndpoint("t1", "p", "http://127.0.0.1:1"),
        comm_type=comm_type,
        arg_type="",
        bucket_ref=ref,
        obj=name,
    )
    assert request_path(msg, ref, name) == unquote(urlsplit(url).path)


BUCKETS = Buckets("/data/src", "/real/src", "/data/dst", "file:///data/dst", fsync=False, umask=0o027)


def test_requests_and_answers_round_trip_and_bad_ones_are_refused() -> None:
    objects = [("/b/a", "a", "a.out"), ("/b/ü", "ü", "sub/ü")]
    data = encode_request("etl_args=x", BUCKETS, objects)
    assert decode_request(data) == ("etl_args=x", BUCKETS, objects)
    with pytest.raises(FileWireError, match=r"need 1\.\.120"):
        decode_request(encode_request("", BUCKETS, [("/b/x", "x", "x")] * (MAX_OBJECTS + 1)))
    with pytest.raises(FileWireError, match="need 1"):
        decode_request(encode_request("", BUCKETS, []))
    with pytest.raises(FileWireError, match="bad request"):
        decode_request(b"{not json")
    with pytest.raises(FileWireError, match="bad request"):
        decode_request(data.replace(b'"m":23', b'"m":4096'))
    with pytest.raises(FileWireError, match="bad request"):
        decode_request(data.replace(b'"s":"/data/src"', b'"s":7'))
    with pytest.raises(FileWireError, match="bad request"):
        decode_request(data.replace(b'"sub/\\u00fc"]', b'"sub", 1]'))
    answer = encode_answer([(200, 5), (500, "boom " * 1000), (0, 0), (-1, "disk full")])
    verdicts = decode_answer(answer, 4)
    assert verdicts[0] == (200, 5)
    assert verdicts[1][0] == 500
    assert len(verdicts[1][1]) == 1024
    assert verdicts[3] == (-1, "disk full")
    with pytest.raises(FileWireError, match="2 object"):
        decode_answer(answer, 2)


def test_a_hello_names_the_worker_and_bad_ones_are_refused() -> None:
    assert decode_hello(encode_hello(1, 4)) == (1, 4)
    for bad in (b"", b"[]", b'{"w": 1}', b'{"w": 2, "n": 2}', b'{"w": -1, "n": 2}', b'{"w": true, "n": 2}'):
        with pytest.raises(FileWireError, match="bad hello"):
            decode_hello(bad)


def test_a_long_socket_path_is_reached_through_its_directory(tmp_path: os.PathLike[str]) -> None:
    deep = os.path.join(str(tmp_path), "d" * 60, "e" * 60)
    os.makedirs(deep)
    path = os.path.join(deep, "files.sock")
    before = set(os.listdir("/proc/self/fd"))
    with short_path(path) as name:
        assert len(name) < 100
        assert os.path.samefile(os.path.dirname(name), deep)
    assert set(os.listdir("/proc/self/fd")) == before
    with short_path("/tmp/x.sock") as name:
        assert name == "/tmp/x.sock"


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077, 0o002])
def test_the_umask_is_read_without_being_changed(umask: int) -> None:
    old = os.umask(umask)
    try:
        assert process_umask() == umask
        assert os.umask(umask) == umask  # still what it was
    finally:
        os.umask(old)
