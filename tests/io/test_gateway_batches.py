"""Batches on the target gateway: each object checked and stored as its own request would be."""

from __future__ import annotations

import http.client
import socket
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from airflow_ais_etl.cluster.bucketmap import register_bucket
from airflow_ais_etl.cluster.directput import grant, puts_store, revoke
from airflow_ais_etl.cluster.gateway import serve_gateway
from airflow_ais_etl.dataplane.storage.base import TEMP_PREFIX
from airflow_ais_etl.etl.naming import uname
from airflow_ais_etl.runtime.http1.batchwire import BATCH_HEADER, decode_results, encode_items
from airflow_ais_etl.runtime.targetbatch import TargetBatches
from tests.slowstore import UNTESTED_PROTOCOL, slow_store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

SECRET = "BaTcHeSsEc"
PREFIX = "/v1/etl/_object/"


class _Gw:
    def __init__(
        self, url: str, src: str, dst: str, src_root: Path, dst_root: Path, store: str, token: str
    ) -> None:
        self.url, self.src, self.dst = url, src, dst
        self.src_root, self.dst_root = src_root, dst_root
        self.store, self.token = store, token
        self.batches = TargetBatches(f"{url}{PREFIX}{SECRET}", timeout=30.0)

    def src_item(self, name: str) -> str:
        return quote(uname("ais", self.src, name), safe="")

    def dst_item(self, name: str, token: str | None = None) -> str:
        return f"{quote(uname('ais', self.dst, name), safe='')}?uuid={token or self.token}"

    def temp_files(self) -> list[str]:
        return [p.name for p in self.dst_root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[_Gw]:
    src_root, dst_root = tmp_path / "src", tmp_path / "dst"
    src_root.mkdir()
    dst_root.mkdir()
    state = tmp_path / "state"
    buckets_file = str(state / "buckets.json")
    src = register_bucket(buckets_file, str(src_root))
    dst = register_bucket(buckets_file, str(dst_root))
    store = puts_store(str(state))
    token = grant(store, dst.name, dst.extra["url"])
    server, thread = serve_gateway("127.0.0.1", 0, SECRET, buckets_file)
    try:
        yield _Gw(server.url, src.name, dst.name, src_root, dst_root, store, token)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_batch_get_answers_each_object_as_its_own_get_would(gw: _Gw) -> None:
    (gw.src_root / "a.bin").write_bytes(b"A" * 100)
    (gw.src_root / "empty").write_bytes(b"")
    (gw.src_root / "big").write_bytes(b"B" * ((1 << 20) + 1))
    (gw.src_root / "link").symlink_to("/etc/hostname")
    items = [
        gw.src_item("a.bin"),
        gw.src_item("missing"),
        gw.src_item("empty"),
        quote(f"ais/@#/{gw.src}/x/../../../etc/passwd", safe=""),
        gw.src_item("link"),
        gw.src_item("big"),
        quote(uname("ais", "no-such-bucket", "a.bin"), safe=""),
    ]
    got = gw.batches.fetch(items)
    assert got is not None
    assert got[0] == (200, b"A" * 100)
    assert got[1][0] == 404
    assert got[2] == (200, b"")
    assert got[3][0] == 400
    assert b"invalid object name" in got[3][1]
    assert got[4][0] == 400
    assert b"resolves outside its bucket" in got[4][1]
    assert got[5] == (0, b"")  # too large for a batch: the pod fetches it on its own
    assert got[6][0] == 404
    assert gw.batches.accepted is True


def test_a_batch_put_stores_what_its_token_grants_and_refuses_the_rest(gw: _Gw) -> None:
    other = register_bucket(str(gw.dst_root.parent / "state" / "buckets.json"), str(gw.src_root))
    got = gw.batches.put(
        [
            (gw.dst_item("d/one"), b"1" * 10),
            (gw.dst_item("forged", token="forged-token"), b"f"),
            (quote(uname("ais", other.name, "x"), safe="") + f"?uuid={gw.token}", b"x"),  # not its bucket
            (quote(f"ais/@#/{gw.dst}/../escape", safe="") + f"?uuid={gw.token}", b"e"),
            (gw.dst_item("two"), b""),
        ]
    )
    assert got is not None
    assert got[0] == (204, b"10")
    assert got[1][0] == 403
    assert b"no running job lets pods write" in got[1][1]
    assert got[2][0] == 403
    assert got[3][0] == 400
    assert got[4] == (204, b"0")
    assert (gw.dst_root / "d" / "one").read_bytes() == b"1" * 10
    assert (gw.dst_root / "two").read_bytes() == b""
    assert sorted(p.name for p in gw.dst_root.rglob("*")) == ["d", "one", "two"]
    assert not (gw.src_root / "x").exists()


def test_a_revoked_grant_stores_nothing_of_a_batch(gw: _Gw) -> None:
    revoke(gw.store, gw.token)
    got = gw.batches.put([(gw.dst_item("late"), b"late")])
    assert got is not None
    assert got[0][0] == 403
    assert list(gw.dst_root.iterdir()) == []


def test_a_batch_with_a_wrong_secret_is_refused_whole(gw: _Gw) -> None:
    wrong = TargetBatches(f"{gw.url}{PREFIX}WrOnGsEcReT", timeout=30.0)
    assert wrong.put([(gw.dst_item("nope"), b"n")]) is None
    assert wrong.accepted is False  # then the pod sends one request per object
    assert list(gw.dst_root.iterdir()) == []


def test_a_batch_cut_short_stores_nothing(gw: _Gw) -> None:
    body = encode_items([(gw.dst_item("first"), b"1" * 1000), (gw.dst_item("second"), b"2" * 100_000)])
    host, port = gw.url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("PUT", f"{PREFIX}{SECRET}/")
    conn.putheader("Content-Length", str(len(body)))
    conn.putheader(BATCH_HEADER, "2")
    conn.endheaders()
    conn.send(body[: len(body) // 2])
    assert conn.sock is not None
    conn.sock.shutdown(socket.SHUT_WR)  # the body ends here; the gateway still answers
    resp = conn.getresponse()
    assert resp.status == 400
    assert b"ended early" in resp.read()
    assert list(gw.dst_root.iterdir()) == []
    assert gw.temp_files() == []


def test_a_malformed_batch_is_a_400_and_stores_nothing(gw: _Gw) -> None:
    body = encode_items([(gw.dst_item("one"), b"1")])
    host, port = gw.url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("PUT", f"{PREFIX}{SECRET}/", body=body, headers={BATCH_HEADER: "2"})  # announces 2
    resp = conn.getresponse()
    assert resp.status == 400
    assert b"bad batch" in resp.read()
    assert list(gw.dst_root.iterdir()) == []


def test_a_batch_answer_is_framed_per_object(gw: _Gw) -> None:
    (gw.src_root / "a").write_bytes(b"aaa")
    host, port = gw.url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    body = encode_items([(gw.src_item("a"), b""), (gw.src_item("a"), b"")])
    conn.request("GET", f"{PREFIX}{SECRET}/", body=body, headers={BATCH_HEADER: "2"})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader(BATCH_HEADER) == "1"
    assert decode_results(resp.read(), 2) == [(200, b"aaa"), (200, b"aaa")]


@pytest.mark.filterwarnings(UNTESTED_PROTOCOL)
def test_a_batch_put_into_an_object_store_uploads_its_objects_side_by_side(tmp_path: Path) -> None:
    """Each upload waits on the network; one after another, a batch of 16 would take 16 round trips."""
    state = tmp_path / "state"
    buckets_file = str(state / "buckets.json")
    with slow_store() as (url, fs, counter):
        dst = register_bucket(buckets_file, url)
        token = grant(puts_store(str(state)), dst.name, dst.extra["url"])
        server, thread = serve_gateway("127.0.0.1", 0, SECRET, buckets_file)
        try:
            batches = TargetBatches(f"{server.url}{PREFIX}{SECRET}", timeout=30.0)
            items = [
                (f"{quote(uname('ais', dst.name, f'o-{i}'), safe='')}?uuid={token}", b"%d" % i)
                for i in range(16)
            ]
            got = batches.put(items)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
        assert got == [(204, b"%d" % len(b"%d" % i)) for i in range(16)]
        root = url.removeprefix("slowmem://")
        assert {p.rpartition("/")[2]: fs.cat_file(p) for p in fs.find(root)} == {
            f"o-{i}": b"%d" % i for i in range(16)
        }
        assert counter.uploads == 16
        assert counter.peak >= 2, "the batch's uploads ran one at a time"
