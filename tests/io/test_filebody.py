"""Request bodies sent from files with sendfile: byte-exact, refused when the file changed, no leaks."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.httpclient import HTTPClient, RequestBodyError, filebody
from airflow_ais_etl.dataplane.httpclient.filebody import FileBody
from tests.io.test_httpclient import Scripted, echo_forever

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration  # scripted servers listen on 127.0.0.1

DATA = os.urandom((3 << 20) + 11)


def counting_sendfile(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.sendfile

    def sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        n = real(out_fd, in_fd, offset, count)
        calls.append(n)
        return n

    monkeypatch.setattr(filebody.os, "sendfile", sendfile)
    return calls


async def _until_idle(http: HTTPClient, url: str, seconds: float = 10.0) -> None:
    """Wait until a connection to ``url`` is idle in the client's pool."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not any(pool.idle for pool in http._pools.values()):
        assert loop.time() < deadline, f"no connection to {url} came back to the pool"
        await asyncio.sleep(0.01)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.asyncio
async def test_a_file_body_goes_by_sendfile_byte_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting_sendfile(monkeypatch)
    path = tmp_path / "obj"
    path.write_bytes(DATA)
    async with Scripted(echo_forever) as srv:
        http = HTTPClient()
        try:
            for _ in range(2):  # and again on the same keep-alive connection
                resp = await http.request(
                    "PUT", srv.url + "/o", body=FileBody(str(path), len(DATA)), size=len(DATA)
                )
                assert await resp.read() == DATA
                # The answer can be in before the pump thread's end reaches the loop (a loaded
                # machine): the connection is back in the pool only then, so wait for that.
                await _until_idle(http, srv.url)
        finally:
            await http.close()
    # The first request, on a fresh connection, goes wholly by sendfile; the second one too unless
    # the transport still held bytes when it started (seen on a loaded machine), when it takes the
    # chunked fallback — wholly, never half and half.
    assert sum(calls) in (len(DATA), 2 * len(DATA))
    assert srv.connections == 1


@pytest.mark.asyncio
async def test_a_file_that_changed_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "obj"
    path.write_bytes(DATA)
    async with Scripted(echo_forever) as srv:
        http = HTTPClient()
        try:
            with pytest.raises(RequestBodyError, match="no longer"):
                await http.request(
                    "PUT", srv.url + "/o", body=FileBody(str(path), len(DATA) + 1), size=len(DATA) + 1
                )
        finally:
            await http.close()


@pytest.mark.asyncio
async def test_a_request_given_up_mid_body_stops_its_pump_and_closes_its_socket(tmp_path: Path) -> None:
    path = tmp_path / "obj"
    path.write_bytes(os.urandom(16 << 20))  # far more than the socket buffers hold

    async def never_reads_the_body(reader, writer, srv) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(60)

    async with Scripted(never_reads_the_body) as srv:
        http = HTTPClient()
        before = open_fds()
        try:
            with pytest.raises(TimeoutError):
                await http.request(
                    "PUT", srv.url + "/o", body=FileBody(str(path), 16 << 20), size=16 << 20, timeout=0.5
                )
            for _ in range(200):  # the pump notices within a poll interval; this only bounds a hang
                if open_fds() <= before + 1:  # the server's accepted socket may remain; the client's dup not
                    break
                await asyncio.sleep(0.05)
            assert open_fds() <= before + 1
        finally:
            await http.close()
