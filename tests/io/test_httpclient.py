"""The keep-alive HTTP/1.1 client against scripted servers on 127.0.0.1 (and through PodClient)."""

from __future__ import annotations

import asyncio
import hashlib
import logging

import pytest

from airflow_ais_etl.cluster.base import BucketRef, PodEndpoint
from airflow_ais_etl.dataplane.comm import PodClient, RetryPolicy
from airflow_ais_etl.dataplane.httpclient import (
    BodyError,
    ConnectionFailed,
    HTTPClient,
    ProtocolError,
    RequestBodyError,
    split_url,
)
from airflow_ais_etl.etl.constants import HPUSH
from airflow_ais_etl.etl.errors import TransformError

pytestmark = pytest.mark.integration  # scripted servers listen on 127.0.0.1


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """Read one request: its request line, header fields (lower-case names) and whole body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    if fields.get(b"transfer-encoding") == b"chunked":
        parts = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")
        body = b"".join(parts)
    else:
        body = await reader.readexactly(int(fields.get(b"content-length", b"0")))
    return lines[0], fields, body


class Scripted:
    """A server that runs ``script(reader, writer, state)`` per connection and counts connections."""

    def __init__(self, script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.handlers: set[asyncio.Task[None]] = set()
        self.server: asyncio.base_events.Server | None = None
        self.url = ""

    async def __aenter__(self) -> Scripted:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.handlers:
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            await self.script(reader, writer, self)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # a client gone, or the server shutting down: both end this connection
        finally:
            writer.close()
            self.handlers.discard(task)


async def echo_forever(reader, writer, srv) -> None:
    while True:
        line, _, body = await read_request(reader)
        srv.requests.append(line)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Seen: %d\r\n\r\n%s"
            % (len(body), len(srv.requests), body)
        )
        await writer.drain()


def _push(client: PodClient, url: str, body=b"data", **kw):
    return client.transform(
        PodEndpoint("t1", "p1", url),
        comm_type=HPUSH,
        arg_type="",
        bucket_ref=BucketRef("ais", "b-0123456789abcdef"),
        obj="obj",
        body=body,
        **kw,
    )


def test_split_url() -> None:
    assert split_url("http://h:1/a/b?c=d") == ("http://h:1", "/a/b?c=d")
    assert split_url("http://h:1") == ("http://h:1", "/")


@pytest.mark.asyncio
async def test_keep_alive_reuses_one_connection() -> None:
    async with Scripted(echo_forever) as srv:
        http = HTTPClient(limit_per_host=4)
        try:
            for i in range(5):
                resp = await http.request("PUT", srv.url + f"/o{i}", body=b"x" * i, headers="X-A: b\r\n")
                assert resp.status == 200
                assert resp.headers["x-seen"] == str(i + 1)
                assert resp.headers.get("Content-Length") == str(i)
                assert await resp.read() == b"x" * i
        finally:
            await http.close()
    assert srv.connections == 1
    assert srv.requests == [f"PUT /o{i} HTTP/1.1".encode() for i in range(5)]


@pytest.mark.asyncio
async def test_limit_per_host_queues_requests_on_the_open_connections() -> None:
    async with Scripted(echo_forever) as srv:
        http = HTTPClient(limit_per_host=2)
        try:

            async def one(i: int) -> bytes:
                resp = await http.request("PUT", srv.url + "/", body=b"%d" % i)
                return await resp.read()

            got = await asyncio.gather(*(one(i) for i in range(20)))
        finally:
            await http.close()
    assert got == [b"%d" % i for i in range(20)]
    assert srv.connections == 2


async def chunked_answer(reader, writer, srv) -> None:
    while True:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"hello ", b"chunked ", b"world"):
            writer.write(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.01)  # the client sees the framing split over several reads
        writer.write(b"0\r\nX-Trailer: t\r\n\r\n")
        await writer.drain()


@pytest.mark.asyncio
async def test_chunked_answers_and_reuse() -> None:
    async with Scripted(chunked_answer) as srv:
        http = HTTPClient()
        try:
            resp = await http.request("GET", srv.url + "/a")
            assert resp.content_length is None
            assert await resp.read() == b"hello chunked world"
            resp = await http.request("GET", srv.url + "/b")
            assert [c async for c in resp.iter_chunks(4)] == [b"hell", b"o ", b"chun", b"ked ", b"worl", b"d"]
        finally:
            await http.close()
    assert srv.connections == 1


@pytest.mark.asyncio
async def test_chunk_framing_split_byte_by_byte() -> None:
    async def dribble(reader, writer, srv) -> None:
        await read_request(reader)
        raw = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n"
            b"0123456789abcdef"
            b"\r\n0\r\n\r\n"
        )
        for i in range(len(raw)):
            writer.write(raw[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0)
        await asyncio.sleep(1)

    async with Scripted(dribble) as srv:
        http = HTTPClient()
        try:
            resp = await http.request("GET", srv.url + "/")
            assert await resp.read() == b"abc0123456789abcdef"
        finally:
            await http.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", "after 10 of 100 bytes"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "before the last chunk"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n", "bare LF"),
    ],
)
async def test_bodies_that_end_early_fail(answer: bytes, match: str) -> None:
    async def cut(reader, writer, srv) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()

    async with Scripted(cut) as srv:
        http = HTTPClient()
        try:
            resp = await http.request("GET", srv.url + "/")
            assert resp.status == 200
            with pytest.raises(BodyError, match=match):
                await resp.read()
            resp = await http.request("GET", srv.url + "/")
            with pytest.raises(BodyError, match=match):
                _ = [c async for c in resp.iter_chunks(4)]
        finally:
            await http.close()
    assert srv.connections == 2  # a broken exchange never goes back to the pool


@pytest.mark.asyncio
async def test_answer_without_length_ends_with_the_connection() -> None:
    async def until_close(reader, writer, srv) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nall of it")
        await writer.drain()

    async with Scripted(until_close) as srv:
        http = HTTPClient()
        try:
            for _ in range(2):
                resp = await http.request("GET", srv.url + "/")
                assert await resp.read() == b"all of it"
        finally:
            await http.close()
    assert srv.connections == 2


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "answer",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ],
)
async def test_malformed_heads_are_protocol_errors(answer: bytes) -> None:
    async def bad(reader, writer, srv) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        await asyncio.sleep(1)

    async with Scripted(bad) as srv:
        http = HTTPClient()
        try:
            with pytest.raises(ProtocolError):
                await http.request("GET", srv.url + "/")
        finally:
            await http.close()


@pytest.mark.asyncio
async def test_informational_answer_is_skipped() -> None:
    async def early_hints(reader, writer, srv) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
        )
        await writer.drain()
        await asyncio.sleep(1)

    async with Scripted(early_hints) as srv:
        http = HTTPClient()
        try:
            resp = await http.request("GET", srv.url + "/")
            assert (resp.status, resp.reason) == (201, "Created")
            assert await resp.read() == b"ok"
        finally:
            await http.close()


async def answer_once_then_drop(reader, writer, srv) -> None:
    """Answer the first request of a connection; take the next one and close without answering."""
    line, _, body = await read_request(reader)
    srv.requests.append(line)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    await read_request(reader)


@pytest.mark.asyncio
async def test_stale_pooled_connection_is_reported_as_reused() -> None:
    async with Scripted(answer_once_then_drop) as srv:
        http = HTTPClient()
        try:
            assert await (await http.request("PUT", srv.url + "/", body=b"1")).read() == b"1"
            with pytest.raises(ConnectionFailed) as info:
                await http.request("PUT", srv.url + "/", body=b"2")
            assert info.value.reused
            assert info.value.cause is None
        finally:
            await http.close()


@pytest.mark.asyncio
async def test_pod_closing_a_pooled_connection_is_retried_at_once(caplog) -> None:
    opened = []

    def factory():
        opened.append(1)

        async def gen():
            yield b"stre"
            yield b"amed"

        return gen()

    # max_hard=0: a counted retry would give up, so success proves the re-send was not counted
    policy = RetryPolicy(first_sleep=5.0, max_hard=0, max_soft=0)
    caplog.set_level(logging.DEBUG, logger="airflow_ais_etl.dataplane.comm")
    async with Scripted(answer_once_then_drop) as srv:
        async with PodClient(request_timeout=10, retry=policy) as client:
            for body, size in [(b"one", None), (b"two", None), (factory, 8), (factory, None)]:
                resp = await _push(client, srv.url, body=body, size=size)
                assert await resp.read() == (b"streamed" if callable(body) else body)
    assert srv.connections == 4  # the first on a new connection, then each pooled attempt fails once
    assert len(opened) == 4  # each streamed body was re-opened for its re-send
    assert not [r for r in caplog.records if r.getMessage().startswith("retrying")]


@pytest.mark.asyncio
async def test_idle_connection_closed_by_the_pod_is_not_reused() -> None:
    async def answer_then_close_soon(reader, writer, srv) -> None:
        _, _, body = await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()

    async with Scripted(answer_then_close_soon) as srv:
        async with PodClient(request_timeout=10, retry=RetryPolicy(max_hard=0, max_soft=0)) as client:
            for i in range(3):
                assert await (await _push(client, srv.url, body=b"%d" % i)).read() == b"%d" % i
                await asyncio.sleep(0.05)  # the pod's close arrives while the connection idles
    assert srv.connections == 3


async def hang_after(reader, writer, srv, answer: bytes) -> None:
    await read_request(reader)
    srv.requests.append(b"x")
    writer.write(answer)
    await writer.drain()
    await asyncio.sleep(30)


@pytest.mark.asyncio
async def test_timeout_waiting_for_the_head() -> None:
    async with Scripted(lambda r, w, s: hang_after(r, w, s, b"")) as srv:
        http = HTTPClient()
        try:
            with pytest.raises(TimeoutError):
                await http.request("GET", srv.url + "/", timeout=0.2)
        finally:
            await http.close()
        async with PodClient(request_timeout=0.2) as client:
            with pytest.raises(TransformError, match="timed out after 0.2s") as info:
                await _push(client, srv.url)
            assert info.value.status is None
    assert len(srv.requests) == 2  # never re-sent


@pytest.mark.asyncio
async def test_timeout_while_reading_the_body() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234"
    async with Scripted(lambda r, w, s: hang_after(r, w, s, answer)) as srv:
        async with PodClient(request_timeout=0.3) as client:
            resp = await _push(client, srv.url)
            with pytest.raises(TransformError, match="timed out after 0.3s while reading"):
                await resp.read()
            resp = await _push(client, srv.url)
            with pytest.raises(TransformError, match="while reading"):
                _ = [c async for c in resp.iter_chunks()]


@pytest.mark.asyncio
async def test_streamed_upload_runs_beside_a_streamed_answer() -> None:
    """The pod answers while it still reads: both directions must flow at once (no deadlock)."""

    async def stream_echo(reader, writer, srv) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            data = await reader.readexactly(size)
            await reader.readexactly(2)
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await writer.drain()
        await reader.readuntil(b"\r\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(30)

    piece = hashlib.sha256(b"x").digest() * 8192  # 256 KiB
    total = 48  # 12 MiB: far beyond the socket buffers of both sides

    async def body():
        for i in range(total):
            yield bytes([i]) + piece[1:]

    async with Scripted(stream_echo) as srv:
        http = HTTPClient()
        try:
            resp = await asyncio.wait_for(http.request("PUT", srv.url + "/", body=body()), 20)
            digest = hashlib.sha256()
            largest = 0
            async for chunk in resp.iter_chunks(1 << 20):
                digest.update(chunk)
                largest = max(largest, len(chunk))
            expect = hashlib.sha256(b"".join(bytes([i]) + piece[1:] for i in range(total)))
            assert digest.hexdigest() == expect.hexdigest()
            assert largest <= 1 << 20
        finally:
            await http.close()


@pytest.mark.asyncio
async def test_streamed_body_must_match_its_size() -> None:
    async def body():
        yield b"short"

    async with Scripted(echo_forever) as srv:
        http = HTTPClient()
        try:
            with pytest.raises(RequestBodyError, match="ended after 5 of its announced 9"):
                await http.request("PUT", srv.url + "/", body=body(), size=9)
        finally:
            await http.close()
        async with PodClient(request_timeout=5) as client:
            with pytest.raises(TransformError, match="cannot send"):
                await _push(client, srv.url, body=lambda: body(), size=9)


@pytest.mark.asyncio
async def test_a_failing_source_fails_the_request_with_its_own_error() -> None:
    class SourceGone(Exception):
        pass

    async def body():
        yield b"first"
        raise SourceGone("disk went away")

    async with Scripted(echo_forever) as srv:
        async with PodClient(request_timeout=5) as client:
            with pytest.raises(SourceGone):
                await _push(client, srv.url, body=lambda: body())
            # the pool still serves afterwards
            assert await (await _push(client, srv.url, body=b"ok")).read() == b"ok"


@pytest.mark.asyncio
async def test_large_answer_is_read_with_back_pressure() -> None:
    size = 24 << 20

    async def big(reader, writer, srv) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        block = b"z" * (1 << 20)
        for _ in range(size >> 20):
            writer.write(block)
            await writer.drain()
        await asyncio.sleep(30)

    async with Scripted(big) as srv:
        http = HTTPClient()
        try:
            resp = await http.request("GET", srv.url + "/")
            await asyncio.sleep(0.3)  # the server keeps sending while nobody reads
            assert resp._size <= 4 << 20  # reading paused instead of buffering all 24 MiB
            got = 0
            async for chunk in resp.iter_chunks(1 << 20):
                got += len(chunk)
            assert got == size
        finally:
            await http.close()


@pytest.mark.asyncio
async def test_closing_an_unread_answer_drops_its_connection() -> None:
    async def big_then_echo(reader, writer, srv) -> None:
        if srv.connections == 1:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5000000\r\n\r\n" + b"a" * 1000)
            await writer.drain()
            await asyncio.sleep(30)
        await echo_forever(reader, writer, srv)

    async with Scripted(big_then_echo) as srv:
        http = HTTPClient()
        try:
            resp = await http.request("GET", srv.url + "/")
            resp.close()
            with pytest.raises(BodyError):
                await resp.read()
            resp = await http.request("PUT", srv.url + "/", body=b"again")
            assert await resp.read() == b"again"
        finally:
            await http.close()
    assert srv.connections == 2


@pytest.mark.asyncio
async def test_refused_connection_is_a_connection_failure() -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        http = HTTPClient()
        try:
            with pytest.raises(ConnectionFailed) as info:
                await http.request("GET", f"http://127.0.0.1:{sock.getsockname()[1]}/")
            assert isinstance(info.value.cause, ConnectionRefusedError)
            assert not info.value.reused
        finally:
            await http.close()
    finally:
        sock.close()
