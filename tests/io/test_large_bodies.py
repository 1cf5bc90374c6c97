"""Large answers go from the socket straight into the destination file: byte-exact, never partial."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.cluster.base import BucketRef, PodEndpoint
from airflow_ais_etl.dataplane.comm import PodClient
from airflow_ais_etl.dataplane.httpclient import BodyError, HTTPClient
from airflow_ais_etl.dataplane.storage.base import TEMP_PREFIX, ObjInfo
from airflow_ais_etl.dataplane.storage.local import LocalBucket
from airflow_ais_etl.dataplane.transfer import ObjectTransformer
from airflow_ais_etl.etl.errors import StorageError, TransformError
from airflow_ais_etl.etl.msg import InitMsg
from tests.io.test_httpclient import Scripted, read_request

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration  # scripted servers listen on 127.0.0.1

ANSWER = os.urandom((5 << 20) + 3)


def answering(body: bytes, *, cut: int = 0):
    """A server that answers every request with ``body`` (its last ``cut`` bytes missing: then hangs up)."""

    async def script(reader, writer, srv) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
            for i in range(0, len(body) - cut, 1 << 20):
                writer.write(body[i : min(i + (1 << 20), len(body) - cut)])
                await writer.drain()
            if cut:
                return

    return script


@pytest.mark.asyncio
async def test_a_large_answer_drains_byte_exact_and_the_connection_is_reused() -> None:
    async with Scripted(answering(ANSWER)) as srv:
        http = HTTPClient()
        try:
            for _ in range(2):
                resp = await http.request("GET", srv.url + "/")
                await asyncio.sleep(0.05)  # part of the body waits buffered before the sink is set
                got = bytearray()
                kinds: set[type] = set()

                def sink(piece: bytes | memoryview, got: bytearray = got, kinds: set[type] = kinds) -> None:
                    kinds.add(type(piece))
                    got.extend(piece)

                assert await resp.drain_into(sink) == len(ANSWER)
                assert bytes(got) == ANSWER
                assert memoryview in kinds  # most of it came as views of the socket buffer
        finally:
            await http.close()
    assert srv.connections == 1


@pytest.mark.asyncio
async def test_a_failing_sink_drops_the_connection_with_its_own_error() -> None:
    async with Scripted(answering(ANSWER)) as srv:
        http = HTTPClient()
        try:
            resp = await http.request("GET", srv.url + "/")
            seen = 0

            def full_disk(piece: bytes | memoryview) -> None:
                nonlocal seen
                seen += len(piece)
                if seen > 2 << 20:
                    raise StorageError("disk full")

            with pytest.raises(StorageError, match="disk full"):
                await resp.drain_into(full_disk)
            resp = await http.request("GET", srv.url + "/")
            assert await resp.read() == ANSWER
        finally:
            await http.close()
    assert srv.connections == 2  # the broken exchange's connection was not reused


@pytest.mark.asyncio
async def test_a_large_answer_cut_short_leaves_no_object(tmp_path: Path) -> None:
    src, dst = LocalBucket(str(tmp_path / "src")), LocalBucket(str(tmp_path / "dst"))
    os.makedirs(src.root)
    os.makedirs(dst.root)
    src.write_bytes("in.bin", b"x" * 10)
    dst.write_bytes("out.bin", b"old")  # an earlier result stays as it was
    ref = BucketRef("ais", "b-0123456789abcdef")
    for body, cut in ((ANSWER, 4097), (ANSWER, 0)):
        async with Scripted(answering(body, cut=cut)) as srv, PodClient(request_timeout=30) as client:
            transformer = ObjectTransformer(client, InitMsg(name="sinker", comm_type="hpush://"), src, ref)
            endpoint = PodEndpoint("t1", "p1", srv.url)
            call = transformer.to_bucket(endpoint, ObjInfo("in.bin", 10, "v"), dst, "out.bin")
            if cut:
                with pytest.raises(TransformError, match="ended early") as err:
                    await call
                assert isinstance(err.value.__cause__, BodyError)
                assert (tmp_path / "dst" / "out.bin").read_bytes() == b"old"
            else:
                assert await call == (len(ANSWER), False)
                assert (tmp_path / "dst" / "out.bin").read_bytes() == ANSWER
        assert [n for n in os.listdir(dst.root) if n.startswith(TEMP_PREFIX)] == []
