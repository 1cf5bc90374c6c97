"""runtime.streamput against a real target gateway on 127.0.0.1: chunked delivery, refusal, a cut PUT."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.runtime.aisproto import DirectPutError
from airflow_ais_etl.runtime.streamput import DirectPutStream
from tests.runtime.gatewaytarget import GatewayTarget, gateway_target

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

SECRET = "StReAmPuTs"


@pytest.fixture
def target(tmp_path: Path) -> Iterator[GatewayTarget]:
    with gateway_target(tmp_path, SECRET) as t:
        yield t


def test_chunks_are_delivered_as_one_object(target: GatewayTarget) -> None:
    put = DirectPutStream(target.url("dir/big obj.bin"))
    pieces = [bytes([i]) * (100_000 + i) for i in range(40)] + [b"tail"]
    put.start_chunked()
    for piece in pieces:
        put.send_chunk(piece)
    put.end_chunked()
    assert put.delivered == put.sent == sum(map(len, pieces))
    assert (target.root / "dir" / "big obj.bin").read_bytes() == b"".join(pieces)
    assert target.temp_files() == []


def test_short_result_goes_with_content_length(target: GatewayTarget) -> None:
    put = DirectPutStream(target.url("small"))
    put.send_response(200, b"just this")
    assert put.delivered == 9
    assert (target.root / "small").read_bytes() == b"just this"


def test_refused_put_says_why(target: GatewayTarget) -> None:
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


def test_cut_put_leaves_nothing(target: GatewayTarget) -> None:
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
