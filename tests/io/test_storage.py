"""Buckets on real directories and on Airflow's ``memory://`` object storage."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest

from airflow_ais_etl.dataplane.storage.base import RESERVED_PREFIX, TEMP_PREFIX, ObjectNotFoundError
from airflow_ais_etl.dataplane.storage.local import LocalBucket
from airflow_ais_etl.dataplane.storage.objectstore import ObjectStorageBucket
from airflow_ais_etl.dataplane.storage.opener import open_bucket
from airflow_ais_etl.dataplane.storage.urls import bucket_id
from airflow_ais_etl.etl.errors import StorageError, ValidationError
from airflow_ais_etl.runtime.bucketfiles import NotFound, StoreError, open_in

AWKWARD = [
    "a b.txt",
    "a-c",
    "a/b",
    "a/z/deep.bin",
    "dir/ünïcode-日本.dat",
    "dir/100%.txt",
    "dir/hash#tag?q=1",
    "x.y/z",
]


def _fill(bucket, names=AWKWARD):
    for name in names:
        bucket.write_bytes(name, f"content of {name}".encode())


def _names(bucket, prefix=""):
    return [info.name for info in bucket.list(prefix)]


@pytest.fixture(params=["local", "memory"])
def bucket(request, tmp_path, memory_url):
    if request.param == "local":
        return open_bucket(str(tmp_path / "bkt"), create=True)
    return open_bucket(memory_url)


def test_open_bucket_kinds(tmp_path, memory_url):
    (tmp_path / "d").mkdir()
    assert isinstance(open_bucket(str(tmp_path / "d")), LocalBucket)
    assert isinstance(open_bucket("file://" + str(tmp_path / "d")), LocalBucket)
    assert isinstance(open_bucket(memory_url), ObjectStorageBucket)


def test_list_is_recursive_sorted_and_filtered(bucket):
    _fill(bucket)
    assert _names(bucket) == sorted(AWKWARD)
    assert _names(bucket, "a/") == ["a/b", "a/z/deep.bin"]
    assert _names(bucket, "a") == ["a b.txt", "a-c", "a/b", "a/z/deep.bin"]
    assert _names(bucket, "dir/h") == ["dir/hash#tag?q=1"]
    assert _names(bucket, "dir/1*") == ["dir/100%.txt"]
    assert _names(bucket, "nothing/") == []
    sizes = {i.name: i.size for i in bucket.list()}
    assert sizes["a/b"] == len(b"content of a/b")


def test_list_refuses_escaping_prefix(bucket):
    with pytest.raises(ValidationError):
        list(bucket.list("../"))


def test_stat_read_and_versions(bucket):
    _fill(bucket)
    info = bucket.stat("dir/ünïcode-日本.dat")
    assert info is not None
    assert info.size == len("content of dir/ünïcode-日本.dat".encode())
    assert bucket.stat("nope") is None
    assert bucket.stat("a") is None  # a directory / pseudo-directory is not an object
    assert bucket.exists("a/b")
    assert not bucket.exists("a/c")
    assert bucket.read_bytes("dir/hash#tag?q=1") == b"content of dir/hash#tag?q=1"
    with pytest.raises(ObjectNotFoundError):
        bucket.read_bytes("missing")
    with pytest.raises(FileNotFoundError):
        list(bucket.read_chunks("missing"))
    bucket.write_bytes("a/b", b"changed content, longer")
    assert bucket.stat("a/b").version != info.version or bucket.stat("a/b").size != info.size


def test_read_small_reads_up_to_its_limit_and_says_none_above(bucket):
    """What a gateway's batch GET answers: the bytes, ``None`` for a larger object, not-found otherwise."""
    _fill(bucket)
    content = b"content of dir/hash#tag?q=1"
    assert bucket.read_small("dir/hash#tag?q=1", len(content)) == content
    assert bucket.read_small("dir/hash#tag?q=1", len(content) - 1) is None
    for name in ("missing", "a"):  # nothing there; a directory (or pseudo-directory)
        with pytest.raises(ObjectNotFoundError):
            bucket.read_small(name, 1 << 20)


def test_read_chunks_streams_in_pieces(bucket):
    data = os.urandom(100_000)
    bucket.write_bytes("big.bin", data)
    chunks = list(bucket.read_chunks("big.bin", 30_000))
    assert [len(c) for c in chunks] == [30_000, 30_000, 30_000, 10_000]
    assert b"".join(chunks) == data


def test_writer_commits_only_on_clean_exit(bucket):
    with bucket.writer("out/obj") as w:
        w.write(b"part1-")
        assert not bucket.exists("out/obj")
        assert _names(bucket) == []  # the in-progress write is invisible
        w.write(memoryview(b"part2"))
    assert bucket.read_bytes("out/obj") == b"part1-part2"
    assert w.size == len(b"part1-part2")


class Boom(Exception):
    pass


def _write_then_fail(bucket, name, data):
    with bucket.writer(name) as w:
        w.write(data)
        raise Boom


def test_failing_writer_leaves_nothing(bucket):
    with pytest.raises(Boom):
        _write_then_fail(bucket, "out/failed", b"half of it")
    assert not bucket.exists("out/failed")
    assert _names(bucket) == []
    # an existing object survives a failed overwrite
    bucket.write_bytes("keep", b"old")
    with pytest.raises(Boom):
        _write_then_fail(bucket, "keep", b"new but broken")
    assert bucket.read_bytes("keep") == b"old"


def test_local_writer_onto_a_directory_fails_at_commit_and_says_so(tmp_path):
    bucket = LocalBucket(str(tmp_path / "bkt"))
    bucket.write_bytes("dir/inside", b"x")
    w = bucket.writer("dir")
    w.write(b"result")
    with pytest.raises(StorageError, match="cannot write 'dir': a directory has that name"):
        w.commit()
    assert sorted(os.listdir(tmp_path / "bkt")) == ["dir"]  # no temp file left next to it
    assert os.listdir(tmp_path / "bkt" / "dir") == ["inside"]


def test_discard(bucket):
    w = bucket.writer("gone")
    w.write(b"x")
    w.discard()
    w.commit()  # no-op after discard
    assert not bucket.exists("gone")
    assert _names(bucket) == []
    with pytest.raises(StorageError):
        w.write(b"more")


def test_large_object_roundtrip(bucket):
    data = os.urandom(9 << 20)  # beyond the object-store spool's in-memory limit
    with bucket.writer("large") as w:
        for i in range(0, len(data), 1 << 20):
            w.write(data[i : i + (1 << 20)])
    assert bucket.read_bytes("large") == data
    assert bucket.stat("large").size == len(data)


def test_delete(bucket):
    bucket.write_bytes("a/x", b"1")
    assert bucket.delete("a/x") is True
    assert bucket.delete("a/x") is False
    assert not bucket.exists("a/x")


def test_reserved_prefix_is_hidden(bucket):
    bucket.write_bytes(RESERVED_PREFIX + "marker", b"m")
    bucket.write_bytes("visible", b"v")
    assert _names(bucket) == ["visible"]
    bucket.check_writable()
    assert _names(bucket) == ["visible"]


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "/etc/passwd", "a//b", "a/./b", "", "a/"])
def test_bad_names_are_refused(bucket, name):
    with pytest.raises(ValidationError):
        bucket.stat(name)
    with pytest.raises(ValidationError):
        bucket.writer(name)


def test_local_symlinks_leading_outside_are_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    root = tmp_path / "bkt"
    root.mkdir()
    (root / "inside").write_bytes(b"ok")
    os.symlink(outside, root / "linkdir")
    os.symlink(outside / "secret", root / "linkfile")
    os.symlink(root / "inside", root / "alias")
    bucket = open_bucket(str(root))
    assert _names(bucket) == ["alias", "inside"]
    for name in ("linkdir/secret", "linkfile"):
        with pytest.raises(StorageError, match="outside the bucket"):
            bucket.read_bytes(name)
        with pytest.raises(StorageError, match="outside the bucket"):
            bucket.read_small(name, 100)
    assert bucket.read_small("alias", 100) == b"ok"
    os.mkfifo(root / "fifo")
    with pytest.raises(ObjectNotFoundError):  # a FIFO is no object: its open does not wait for a writer
        bucket.read_small("fifo", 100)
    with pytest.raises(StorageError, match="outside the bucket"):
        bucket.writer("linkdir/new")
    assert not (outside / "new").exists()
    assert bucket.read_bytes("alias") == b"ok"
    (root / "sub").mkdir()
    (root / "sub" / "plain").write_bytes(b"plain")
    assert bucket.read_bytes("sub/plain") == b"plain"  # now a directory known to be inside
    os.symlink(outside / "secret", root / "sub" / "out")
    os.symlink(root / "inside", root / "sub" / "in")
    with pytest.raises(StorageError, match="outside the bucket"):
        bucket.read_bytes("sub/out")
    with pytest.raises(StorageError, match="outside the bucket"):
        bucket.read_small("sub/out", 100)
    assert bucket.read_small("sub/in", 100) == b"ok"


def test_a_source_opened_in_place_follows_only_links_that_stay_inside(tmp_path):
    """The file transport's pods open sources without an lstat first: links still get the full check."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    root = tmp_path / "bkt"
    (root / "sub").mkdir(parents=True)
    (root / "inside").write_bytes(b"ok")
    (root / "sub" / "deep").write_bytes(b"deep")
    os.symlink(outside / "secret", root / "linkfile")
    os.symlink(outside, root / "linkdir")
    os.symlink(root / "inside", root / "alias")
    os.mkfifo(root / "fifo")
    real = os.path.realpath(root)
    for name, data in (("inside", b"ok"), ("alias", b"ok"), ("sub/deep", b"deep")):
        fd, size = open_in("file://b", str(root), real, name)
        try:
            assert size == len(data)
            assert os.read(fd, 100) == data
        finally:
            os.close(fd)
    for name in ("linkfile", "linkdir/secret"):
        with pytest.raises(StoreError, match="outside the bucket"):
            open_in("file://b", str(root), real, name)
    for name in ("fifo", "sub", "missing"):
        with pytest.raises(NotFound):
            open_in("file://b", str(root), real, name)


def test_local_temp_files_are_hidden_and_local_path(tmp_path):
    bucket = open_bucket(str(tmp_path), create=True)
    bucket.write_bytes("d/obj", b"1")
    (tmp_path / "d" / (TEMP_PREFIX + "stray")).write_bytes(b"partial")
    assert _names(bucket) == ["d/obj"]
    assert bucket.local_path("d/obj") == str(tmp_path / "d" / "obj")
    with pytest.raises(StorageError):
        bucket.writer("d/" + TEMP_PREFIX + "x")


@pytest.mark.integration
def test_local_partials_of_a_killed_writer_are_cleaned(tmp_path):
    root = tmp_path / "bkt"
    script = textwrap.dedent(
        f"""
        import os, sys
        from airflow_ais_etl.dataplane.storage.local import LocalBucket
        bucket = LocalBucket({str(root)!r})
        streamed = bucket.writer("sub/streamed")  # unnamed temp file: leaves nothing when killed
        streamed.write(b"s" * 1000)
        named = bucket.begin_write("sub/victim")  # a named one, as where O_TMPFILE is missing
        os.write(named.fd, b"x" * 1000)
        print("written", flush=True)
        sys.stdin.read()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=os.getcwd()
    )
    try:
        assert proc.stdout.readline().strip() == b"written"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    leftovers = [p.name for p in (root / "sub").iterdir()]
    assert len(leftovers) == 1
    assert leftovers[0].startswith(TEMP_PREFIX)
    bucket = open_bucket(str(root))
    live = bucket.writer("sub/alive")  # this process is alive: its temp file stays
    live.write(b"y")
    assert _names(bucket) == []
    assert bucket.clean_partials() == 1
    assert [p.name for p in (root / "sub").iterdir() if p.name == leftovers[0]] == []
    live.commit()
    assert _names(bucket) == ["sub/alive"]
    assert bucket.clean_partials(stale_after=0.0) == 0


def test_open_bucket_missing_dir_says_how_to_fix(tmp_path):
    missing = tmp_path / "no" / "such"
    with pytest.raises(StorageError, match=re.escape(str(missing))) as info:
        open_bucket(str(missing))
    assert "mkdir -p" in str(info.value)
    bucket = open_bucket("file://" + str(missing), create=True)
    assert missing.is_dir()
    assert bucket.url == "file://" + str(missing)
    (tmp_path / "plainfile").write_bytes(b"")
    with pytest.raises(StorageError, match="not a directory"):
        open_bucket(str(tmp_path / "plainfile"))


def test_check_writable_names_the_bucket(tmp_path):
    bucket = open_bucket(str(tmp_path / "b"), create=True)
    bucket.check_writable()
    os.rmdir(tmp_path / "b")
    with pytest.raises(StorageError, match=re.escape(bucket.url)):
        bucket.check_writable()


def test_bucket_id_is_stable_and_short(tmp_path):
    a = bucket_id(str(tmp_path / "x"))
    assert re.fullmatch(r"b-[0-9a-f]{16}", a)
    assert a == bucket_id(str(tmp_path / "x") + "/")
    assert a == bucket_id("file://" + str(tmp_path / "x"))
    assert a != bucket_id(str(tmp_path / "y"))
    assert bucket_id("s3://bkt/pre/") == bucket_id("S3://bkt/pre")
    assert bucket_id("s3://bkt/pre") != bucket_id("gs://bkt/pre")


def test_list_reserved(bucket):
    names = [RESERVED_PREFIX + "journal/e/fp/2-b.json", RESERVED_PREFIX + "journal/e/fp/1-a.json"]
    for name in names:
        bucket.write_bytes(name, b"[]")
    bucket.write_bytes(RESERVED_PREFIX + "journal/other/x", b"x")
    bucket.write_bytes("data", b"d")
    assert list(bucket.list_reserved(RESERVED_PREFIX + "journal/e/fp/")) == sorted(names)
    assert len(list(bucket.list_reserved())) == 3
    assert _names(bucket) == ["data"]
    with pytest.raises(StorageError):
        list(bucket.list_reserved("journal/"))
