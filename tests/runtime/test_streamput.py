"""runtime.streamput against a real target gateway on 127.0.0.1: chunked delivery, refusal, a cut PUT."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from airflow_ais_etl.cluster.directput import grant, puts_store
from airflow_ais_etl.cluster.gateway import register_bucket, serve_gateway
from airflow_ais_etl.dataplane.storage.base import TEMP_PREFIX
from airflow_ais_etl.etl.naming import uname
from airflow_ais_etl.runtime.aisproto import DirectPutError
from airflow_ais_etl.runtime.streamput import DirectPutStream

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

SECRET = "StReAmPuTs"


class _Target:
    def __init__(self, gateway_url: str, bucket: str, root: Path, token: str) -> None:
        self.gateway_url = gateway_url
        self.bucket = bucket
        self.root = root
        self.token = token

    def url(self, obj: str, token: str | None = None) -> str:
        escaped = quote(uname("ais", self.bucket, obj), safe="")
        return f"{self.gateway_url}/v1/etl/_object/{SECRET}/{escaped}?uuid={token or self.token}"

    def temp_files(self) -> list[str]:
        return [p.name for p in self.root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


@pytest.fixture
def target(tmp_path: Path) -> Iterator[_Target]:
    root = tmp_path / "dst"
    root.mkdir()
    buckets_file = str(tmp_path / "state" / "buckets.json")
    ref = register_bucket(buckets_file, str(root))
    token = grant(puts_store(str(tmp_path / "state")), ref.name, ref.extra["url"])
    server, thread = serve_gateway("127.0.0.1", 0, SECRET, buckets_file)
    try:
        yield _Target(server.url, ref.name, root, token)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_chunks_are_delivered_as_one_object(target: _Target) -> None:
    put = DirectPutStream(target.url("dir/big obj.bin"))
    pieces = [bytes([i]) * (100_000 + i) for i in range(40)] + [b"tail"]
    put.start_chunked()
    for piece in pieces:
        put.send_chunk(piece)
    put.end_chunked()
    assert put.delivered == put.sent == sum(map(len, pieces))
    assert (target.root / "dir" / "big obj.bin").read_bytes() == b"".join(pieces)
    assert target.temp_files() == []


def test_short_result_goes_with_content_length(target: _Target) -> None:
    put = DirectPutStream(target.url("small"))
    put.send_response(200, b"just this")
    assert put.delivered == 9
    assert (target.root / "small").read_bytes() == b"just this"


def test_refused_put_says_why(target: _Target) -> None:
    put = DirectPutStream(target.url("nope", token="forged"))
    put.start_chunked()

    def send_all() -> None:  # the gateway answers 403 without reading: a send fails or the answer says so
        for _ in range(64):
            put.send_chunk(b"z" * 65536)
        put.end_chunked()

    with pytest.raises(DirectPutError, match="no running job lets pods write") as err:
        send_all()
    assert err.value.status == 403
    assert not (target.root / "nope").exists()


def _wait(condition: Callable[[], bool]) -> None:
    """Wait (at most 30 s) for the gateway's own thread to reach a state; the caller asserts it."""
    deadline = time.monotonic() + 30
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_cut_put_leaves_nothing(target: _Target) -> None:
    put = DirectPutStream(target.url("cut.bin"))
    put.start_chunked()
    for _ in range(32):
        put.send_chunk(b"c" * 65536)
    _wait(lambda: bool(target.temp_files()))
    assert target.temp_files(), "the gateway should be writing the partial object by now"
    put.close()  # before the last chunk: the connection is reset
    _wait(lambda: not target.temp_files())
    assert target.temp_files() == []
    assert not (target.root / "cut.bin").exists()
    assert put.delivered is None
