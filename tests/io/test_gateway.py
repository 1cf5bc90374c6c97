"""The target gateway over real HTTP on 127.0.0.1: callbacks, secrets, traversal, keep-alive."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading

import pytest

from airflow_ais_etl.cluster.bucketmap import read_buckets, register_bucket
from airflow_ais_etl.cluster.gateway import new_secret, serve_gateway
from airflow_ais_etl.dataplane.storage.opener import open_bucket
from airflow_ais_etl.dataplane.storage.urls import bucket_id
from airflow_ais_etl.etl.naming import callback_path, uname

SECRET = "AbCdEfGhIj"
PREFIX = "/v1/etl/_object/"
NAMES = [
    "plain.txt",
    "with space.bin",
    "ünïcode/日本語.dat",
    "100%/50%.txt",
    "hash#frag",
    "what?no=query",
    "deep/er/and/deeper/obj",
    "semi;colon,comma!(x)*'",
]


@pytest.fixture
def gw(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    buckets_file = str(tmp_path / "state" / "buckets.json")
    ref = register_bucket(buckets_file, str(root))
    server, thread = serve_gateway("127.0.0.1", 0, SECRET, buckets_file)
    try:
        yield server, ref, root, buckets_file
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _conn(server):
    host, port = server.server_address[:2]
    return http.client.HTTPConnection(host, port, timeout=10)


def _get(server, path, method="GET"):
    conn = _conn(server)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.getheaders()
    finally:
        conn.close()


def _obj_path(ref, name, secret=SECRET):
    return PREFIX + secret + callback_path(uname(ref.provider, ref.name, name))


def test_serves_awkward_names(gw):
    server, ref, root, _ = gw
    bucket = open_bucket(str(root))
    for i, name in enumerate(NAMES):
        bucket.write_bytes(name, f"{i}:{name}".encode() * 50)
    for i, name in enumerate(NAMES):
        status, body, headers = _get(server, _obj_path(ref, name))
        assert status == 200, (name, body)
        assert body == f"{i}:{name}".encode() * 50
        assert dict(headers)["Content-Length"] == str(len(body))


def test_slashes_and_at_may_stay_literal(gw):
    server, ref, root, _ = gw
    open_bucket(str(root)).write_bytes("d/a b.txt", b"literal")
    path = PREFIX + SECRET + f"/ais/@%23/{ref.name}/d/a%20b.txt"
    assert _get(server, path)[:2] == (200, b"literal")


def test_head_sends_length_without_body(gw):
    server, ref, root, _ = gw
    open_bucket(str(root)).write_bytes("h", b"12345")
    conn = _conn(server)
    try:
        conn.request("HEAD", _obj_path(ref, "h"))
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Length") == "5"
        assert resp.read() == b""
    finally:
        conn.close()


def test_large_object_streams(gw):
    server, ref, root, _ = gw
    data = os.urandom(5 << 20)
    (root / "big").write_bytes(data)
    status, body, _ = _get(server, _obj_path(ref, "big"))
    assert status == 200
    assert body == data


@pytest.mark.parametrize("secret", ["wrong12345", "", "AbCdEfGhI", "AbCdEfGhIjK", "abcdefghij"])
def test_wrong_secret_gets_403_and_no_data(gw, secret):
    server, ref, root, _ = gw
    (root / "o").write_bytes(b"TOP-SECRET-BYTES")
    status, body, _ = _get(server, _obj_path(ref, "o", secret))
    assert status == 403
    assert b"TOP-SECRET" not in body
    status, body, _ = _get(server, PREFIX + secret)
    assert status == 403


@pytest.mark.parametrize(
    "rest",
    [
        "ais/@%23/{b}/..%2F..%2Fsecret",
        "ais%2F@%23%2F{b}%2F%2e%2e%2F%2e%2e%2Fsecret",
        "ais%2F@%23%2F{b}%2Fsub%2F..%2F..%2F..%2Fsecret",
        "ais%2F@%23%2F{b}%2F%2Fetc%2Fpasswd",
        "ais%2F@%23%2F{b}%2F.%2Fo",
        "ais%2F@%23%2F{b}%2F",
        "ais%2F@%23%2F..%2Fsecret",
        "ais%2F@%23%2F{b}%2Fo%00",
    ],
)
def test_traversal_is_refused(gw, rest):
    server, ref, root, _ = gw
    (root / "o").write_bytes(b"inside")
    (root.parent / "secret").write_bytes(b"OUTSIDE")
    status, body, _ = _get(server, PREFIX + SECRET + "/" + rest.format(b=ref.name))
    assert status == 400, body
    assert b"OUTSIDE" not in body


def test_symlink_out_of_bucket_is_refused(gw):
    server, ref, root, _ = gw
    (root.parent / "secret").write_bytes(b"OUTSIDE")
    os.symlink(root.parent / "secret", root / "link")
    status, body, _ = _get(server, _obj_path(ref, "link"))
    assert status == 400
    assert b"OUTSIDE" not in body


def test_missing_object_and_bucket(gw):
    server, ref, root, _ = gw
    assert _get(server, _obj_path(ref, "absent"))[0] == 404
    (root / "dir").mkdir()
    assert _get(server, _obj_path(ref, "dir"))[0] == 404
    status, body, _ = _get(server, PREFIX + SECRET + callback_path(uname("ais", "b-0000000000000000", "x")))
    assert status == 404
    assert _get(server, "/v1/other")[0] == 404


def test_bucket_registered_later_is_found(gw, tmp_path):
    server, _, _, buckets_file = gw
    later = tmp_path / "later"
    later.mkdir()
    (later / "x").write_bytes(b"late")
    ref = register_bucket(buckets_file, "file://" + str(later))
    assert ref.name == bucket_id(str(later))
    assert _get(server, _obj_path(ref, "x"))[:2] == (200, b"late")


def test_keep_alive_reuses_one_connection(gw):
    server, ref, root, _ = gw
    for i in range(5):
        (root / f"k{i}").write_bytes(b"k" * i)
    conn = _conn(server)
    try:
        conn.request("GET", _obj_path(ref, "k0"))
        conn.getresponse().read()
        sock = conn.sock
        for i in range(5):
            conn.request("GET", _obj_path(ref, f"k{i}"))
            resp = conn.getresponse()
            assert resp.read() == b"k" * i
            conn.request("GET", _obj_path(ref, "missing"))
            assert conn.getresponse().read()  # error answers keep the connection too
        assert conn.sock is sock
    finally:
        conn.close()


def test_register_bucket_is_atomic_under_concurrency(tmp_path):
    buckets_file = str(tmp_path / "buckets.json")
    dirs = [str(tmp_path / f"d{i}") for i in range(16)]
    refs = []
    threads = [
        threading.Thread(target=lambda d=d: refs.append(register_bucket(buckets_file, d))) for d in dirs
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = read_buckets(buckets_file)
    assert sorted(data) == sorted(bucket_id(d) for d in dirs)
    assert {r.name for r in refs} == set(data)
    assert all(r.provider == "ais" and r.extra["url"] == data[r.name]["url"] for r in refs)
    assert json.loads((tmp_path / "buckets.json").read_text()) == data
    assert register_bucket(buckets_file, dirs[0]).name == bucket_id(dirs[0])


def test_new_secret_shape():
    s = new_secret()
    assert len(s) == 10
    assert s.isalpha()
    assert s != new_secret()


@pytest.mark.integration
def test_runs_as_a_program(tmp_path):
    root = tmp_path / "src"
    root.mkdir()
    (root / "a b").write_bytes(b"from the program")
    buckets_file = str(tmp_path / "buckets.json")
    ref = register_bucket(buckets_file, str(root))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_ais_etl.cluster.gateway",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--secret",
            SECRET,
            "--buckets",
            buckets_file,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = proc.stdout.readline().decode().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", _obj_path(ref, "a b"))
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"from the program")
        conn.close()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.integration
def test_serves_an_object_store_bucket(tmp_path, memory_url):
    bucket = open_bucket(memory_url)
    bucket.write_bytes("d/x y#z", b"from memory" * 1000)
    buckets_file = str(tmp_path / "buckets.json")
    ref = register_bucket(buckets_file, memory_url)
    server, thread = serve_gateway("127.0.0.1", 0, SECRET, buckets_file)
    try:
        status, body, headers = _get(server, _obj_path(ref, "d/x y#z"))
        assert (status, body) == (200, b"from memory" * 1000)
        assert dict(headers)["Content-Length"] == str(len(body))
        assert _get(server, _obj_path(ref, "d/absent"))[0] == 404
        assert _get(server, _obj_path(ref, "d/x y#z"), method="HEAD")[:2] == (200, b"")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
