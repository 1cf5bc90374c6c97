"""Communicators against the real runtime server and gateway, plus fault servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import sys

import pytest

from airflow_ais_etl.cluster.base import PodEndpoint
from airflow_ais_etl.cluster.bucketmap import register_bucket
from airflow_ais_etl.dataplane.comm import PodClient, RetryPolicy, build_request
from airflow_ais_etl.dataplane.storage.opener import open_bucket
from airflow_ais_etl.etl.constants import HPULL, HPUSH, HREV, IO
from airflow_ais_etl.etl.errors import TransformError, ValidationError

OBJECTS = {
    "plain.bin": b"hello transformer",
    "dir/with space ünï 日本.txt": "ünïcode body ✓".encode() * 100,
    "odd/100%#frag?q=1;x,y!": bytes(range(256)) * 8,
    "empty": b"",
    "big/2mib.bin": hashlib.sha256(b"seed").digest() * (2 * 1024 * 1024 // 32),
}


def expected(data: bytes) -> bytes:
    """The transform every test pod applies, computed locally."""
    return hashlib.md5(data).hexdigest().encode() + b"|" + data[::-1]


BYTES_CODE = """
import hashlib

def transform(data):
    return hashlib.md5(data).hexdigest().encode() + b"|" + data[::-1]
"""

URL_CODE = """
import hashlib
import urllib.request

def transform(url):
    with urllib.request.urlopen(url) as resp:
        data = resp.read()
    return hashlib.md5(data).hexdigest().encode() + b"|" + data[::-1]
"""

IO_CODE = """
import hashlib
import sys

data = sys.stdin.buffer.read()
sys.stdout.buffer.write(hashlib.md5(data).hexdigest().encode() + b"|" + data[::-1])
"""

MISC_CODE = """
import time

def transform(data):
    if data == b"fail":
        raise ValueError("custom failure marker 1234")
    if data == b"slow":
        time.sleep(5)
    return data
"""

COMBOS = [
    (HPUSH, ""),
    (HPUSH, "fqn"),
    (HPULL, ""),
    (HPULL, "url"),
    (HPULL, "fqn"),
    (HREV, ""),
    (IO, ""),
]


@pytest.fixture
def source(tmp_path, gateway):
    server, buckets_file = gateway
    root = tmp_path / "src"
    bucket = open_bucket(str(root), create=True)
    for name, data in OBJECTS.items():
        bucket.write_bytes(name, data)
    return bucket, register_bucket(buckets_file, str(root)), server


@pytest.mark.asyncio
@pytest.mark.parametrize(("comm_type", "arg_type"), COMBOS)
async def test_every_comm_and_arg_type(tmp_path, runtimes, source, comm_type, arg_type):
    bucket, ref, gw = source
    code = URL_CODE if arg_type == "url" else BYTES_CODE
    io_command = None
    if comm_type == IO:
        (tmp_path / "io.py").write_text(IO_CODE)
        io_command = [sys.executable, str(tmp_path / "io.py")]
    rt = runtimes(
        tmp_path / "pod",
        code,
        comm_type=comm_type,
        arg_type=arg_type,
        target_url=gw.callback_base(),
        io_command=io_command,
    )
    endpoint = PodEndpoint("t1", "pod-1", rt.url, tuple(io_command) if io_command else None)
    async with PodClient(request_timeout=60) as client:
        ok, text = await client.health(endpoint)
        assert ok, text
        for name, data in OBJECTS.items():
            push_body = data if comm_type in (HPUSH, IO) and arg_type == "" else None
            resp = await client.transform(
                endpoint,
                comm_type=comm_type,
                arg_type=arg_type,
                bucket_ref=ref,
                obj=name,
                body=push_body,
                size=len(data),
                fqn=bucket.local_path(name),
            )
            assert resp.status == 200
            if len(data) > 100_000:
                got = b"".join([chunk async for chunk in resp.iter_chunks(64 * 1024)])
            else:
                got = await resp.read()
            assert got == expected(data), (name, rt.log()[-2000:])


@pytest.mark.asyncio
async def test_streamed_body_from_a_factory(tmp_path, runtimes, source):
    bucket, ref, _ = source
    rt = runtimes(tmp_path / "pod", BYTES_CODE, comm_type=HPUSH, chunk_size=0)
    endpoint = PodEndpoint("t1", "pod-1", rt.url)
    name = "big/2mib.bin"
    data = OBJECTS[name]

    def reopen():
        async def gen():
            for chunk in bucket.read_chunks(name, 100_000):
                yield chunk

        return gen()

    async with PodClient(request_timeout=60) as client:
        for size in (len(data), None):  # Content-Length known, then chunked upload
            resp = await client.transform(
                endpoint, comm_type=HPUSH, arg_type="", bucket_ref=ref, obj=name, body=reopen, size=size
            )
            async with resp:
                got = b"".join([c async for c in resp.iter_chunks()])
            assert got == expected(data)


@pytest.mark.asyncio
async def test_pod_error_carries_its_message(tmp_path, runtimes, source):
    _, ref, _ = source
    rt = runtimes(tmp_path / "pod", MISC_CODE, comm_type=HPUSH)
    endpoint = PodEndpoint("t7", "pod-7", rt.url)
    async with PodClient(request_timeout=30) as client:
        with pytest.raises(TransformError) as info:
            await client.transform(
                endpoint, comm_type=HPUSH, arg_type="", bucket_ref=ref, obj="o1", body=b"fail"
            )
        err = info.value
        assert err.status == 500
        assert err.object_name == "o1"
        assert "custom failure marker 1234" in str(err)
        assert str(err).startswith('[t[t7],pod="pod-7"]')
        # the same connection pool still works afterwards
        resp = await client.transform(
            endpoint, comm_type=HPUSH, arg_type="", bucket_ref=ref, obj="o2", body=b"ok"
        )
        assert await resp.read() == b"ok"


@pytest.mark.asyncio
async def test_request_timeout(tmp_path, runtimes, source):
    _, ref, _ = source
    rt = runtimes(tmp_path / "pod", MISC_CODE, comm_type=HPUSH)
    endpoint = PodEndpoint("t1", "pod-1", rt.url)
    async with PodClient(request_timeout=0.3) as client:
        with pytest.raises(TransformError, match="timed out") as info:
            await client.transform(
                endpoint, comm_type=HPUSH, arg_type="", bucket_ref=ref, obj="s", body=b"slow"
            )
        assert info.value.status is None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")
    return b"".join(parts)


class FaultServer:
    """A minimal HTTP/1.1 server whose answers misbehave on purpose; counts requests."""

    def __init__(self, mode: str, sock: socket.socket | None = None) -> None:
        self.mode = mode
        self.requests = 0
        self.sock = sock
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> str:
        if self.sock is None:
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
        self.server = await asyncio.start_server(self._handle, sock=self.sock)
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        elif self.sock is not None:
            self.sock.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                chunked = False
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                    chunked = chunked or line.lower() == b"transfer-encoding: chunked"
                body = await (_read_chunked(reader) if chunked else reader.readexactly(length))
                self.requests += 1
                if self.mode == "disconnect":
                    break
                if self.mode == "status500":
                    msg = b"pod says no"
                    writer.write(
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n%s"
                        % (len(msg), msg)
                    )
                elif self.mode == "short":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
                    await writer.drain()
                    break
                elif self.mode == "chunked-abort":
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
                    await writer.drain()
                    break
                elif self.mode == "hang":
                    await asyncio.sleep(30)
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
                if self.mode == "close-after-answer":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _ref():
    from airflow_ais_etl.cluster.base import BucketRef

    return BucketRef("ais", "b-0123456789abcdef")


async def _push(client, url, body=b"data", **kw):
    return await client.transform(
        PodEndpoint("t1", "p1", url),
        comm_type=HPUSH,
        arg_type="",
        bucket_ref=_ref(),
        obj="obj",
        body=body,
        **kw,
    )


@pytest.mark.integration  # an in-process HTTP server
@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["short", "chunked-abort"])
async def test_response_ending_early_is_an_error(mode):
    srv = FaultServer(mode)
    url = await srv.start()
    try:
        async with PodClient(request_timeout=10) as client:
            with pytest.raises(TransformError, match="ended early"):
                await (await _push(client, url)).read()
            resp = await _push(client, url)
            with pytest.raises(TransformError, match="ended early"):
                _ = [c async for c in resp.iter_chunks()]
    finally:
        await srv.close()


@pytest.mark.integration  # an in-process HTTP server
@pytest.mark.asyncio
async def test_no_retry_on_http_status():
    srv = FaultServer("status500")
    url = await srv.start()
    try:
        async with PodClient(request_timeout=10) as client:
            with pytest.raises(TransformError, match="pod says no") as info:
                await _push(client, url)
        assert info.value.status == 500
        assert srv.requests == 1
    finally:
        await srv.close()


@pytest.mark.integration  # an in-process HTTP server
@pytest.mark.asyncio
async def test_no_retry_on_timeout():
    srv = FaultServer("hang")
    url = await srv.start()
    try:
        async with PodClient(request_timeout=0.2) as client:
            with pytest.raises(TransformError, match="timed out"):
                await _push(client, url)
        assert srv.requests == 1
    finally:
        await srv.close()


@pytest.mark.integration  # an in-process HTTP server
@pytest.mark.asyncio
async def test_disconnects_are_retried_then_given_up_and_body_reopened():
    srv = FaultServer("disconnect")
    url = await srv.start()
    opened = []

    def factory():
        opened.append(1)

        async def gen():
            yield b"da"
            yield b"ta"

        return gen()

    try:
        async with PodClient(request_timeout=10, retry=RetryPolicy(first_sleep=0.001, step=0.001)) as client:
            with pytest.raises(TransformError, match="3 attempt"):
                await _push(client, url, body=None, body_factory=factory, size=4)
        assert srv.requests == 3  # 1 + 2 hard retries
        assert len(opened) == 3
    finally:
        await srv.close()


@pytest.mark.integration  # an in-process HTTP server
@pytest.mark.asyncio
async def test_pooled_connection_closed_by_the_pod_is_retried():
    srv = FaultServer("close-after-answer")
    url = await srv.start()

    def factory():
        async def gen():
            yield b"str"
            yield b"eamed"

        return gen()

    try:
        async with PodClient(request_timeout=10) as client:
            for body, size in [(b"one", None), (factory, 8), (factory, None), (b"two", None)] * 2:
                resp = await _push(client, url, body=body, size=size)
                assert await resp.read() == (b"streamed" if callable(body) else body)
    finally:
        await srv.close()


class _OpenOnRetry(logging.Handler):
    """Start listening on a bound socket when the client logs its first retry."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(logging.DEBUG)
        self.sock = sock
        self.retries = 0
        self.opened = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("retrying"):
            self.retries += 1
            if self.retries == 2:
                self.sock.listen(16)
                self.opened.set()


@pytest.fixture
def comm_log():
    logger = logging.getLogger("airflow_ais_etl.dataplane.comm")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    handlers = []

    def attach(handler):
        handlers.append(handler)
        logger.addHandler(handler)
        return handler

    yield attach
    for h in handlers:
        logger.removeHandler(h)
    logger.setLevel(old)


@pytest.mark.integration  # an in-process HTTP server
@pytest.mark.asyncio
async def test_refused_connection_is_retried_until_the_port_opens(comm_log):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    hook = comm_log(_OpenOnRetry(sock))
    srv = FaultServer("echo", sock)
    try:
        async with PodClient(request_timeout=10) as client:
            task = asyncio.ensure_future(_push(client, url, body=b"late but fine"))
            await hook.opened.wait()
            await srv.start()
            resp = await task
            assert await resp.read() == b"late but fine"
        assert hook.retries == 2
        assert srv.requests == 1
    finally:
        await srv.close()


@pytest.mark.asyncio
async def test_refused_connection_gives_up_after_soft_limit(comm_log):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    hook = comm_log(_OpenOnRetry(sock))
    hook.retries = -100  # never open
    try:
        async with PodClient(request_timeout=10, retry=RetryPolicy(first_sleep=0.001, step=0.001)) as client:
            with pytest.raises(TransformError, match="6 attempt") as info:
                await _push(client, url)
        assert info.value.status is None
        assert hook.retries == -100 + 5
    finally:
        sock.close()


@pytest.mark.asyncio
async def test_health_of_a_dead_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        async with PodClient(request_timeout=None) as client:
            ok, text = await client.health(
                PodEndpoint("t1", "p", f"http://127.0.0.1:{sock.getsockname()[1]}")
            )
        assert not ok
        assert text
    finally:
        sock.close()


def test_request_shapes():
    ref = _ref()
    ep = PodEndpoint("t1", "p1", "http://10.0.0.1:8080", ("python", "/app/x.py"))
    name = "dir/a b.jpg"
    assert build_request(ep, comm_type=HPUSH, arg_type="", bucket_ref=ref, obj=name) == (
        "PUT",
        "http://10.0.0.1:8080/b-0123456789abcdef/dir/a%20b.jpg",
    )
    assert build_request(ep, comm_type=IO, arg_type="", bucket_ref=ref, obj=name) == (
        "PUT",
        "http://10.0.0.1:8080/b-0123456789abcdef/dir/a%20b.jpg?command=bash&command=-c&command=python+%2Fapp%2Fx.py",
    )
    for comm in (HPULL, HREV):
        assert build_request(ep, comm_type=comm, arg_type="", bucket_ref=ref, obj=name) == (
            "GET",
            "http://10.0.0.1:8080/ais%2F@%23%2Fb-0123456789abcdef%2Fdir%2Fa%20b.jpg",
        )
    assert build_request(ep, comm_type=HPULL, arg_type="url", bucket_ref=ref, obj=name) == build_request(
        ep, comm_type=HPULL, arg_type="", bucket_ref=ref, obj=name
    )
    fqn = "/ais/mp1/@ais/src/%ob/img.jpg"
    # December 2024: the escaped FQN is the path
    assert build_request(
        ep, comm_type=HPUSH, arg_type="fqn", bucket_ref=ref, obj="img.jpg", fqn=fqn, protocol="2024"
    ) == ("PUT", "http://10.0.0.1:8080/%2Fais%2Fmp1%2F@ais%2Fsrc%2F%25ob%2Fimg.jpg")
    assert (
        build_request(
            ep, comm_type=HPULL, arg_type="fqn", bucket_ref=ref, obj="img.jpg", fqn=fqn, protocol="2024"
        )[0]
        == "GET"
    )
    # AIS 2.x (the default): the object's own path, query etl_fqn = url.PathEscape(FQN), query-encoded
    # by Go's url.Values.Encode (keys sorted): ext/etl/communicator.go doRequest and redirectArgs
    escaped_fqn = "%252Fais%252Fmp1%252F%40ais%252Fsrc%252F%2525ob%252Fimg.jpg"
    assert build_request(ep, comm_type=HPUSH, arg_type="fqn", bucket_ref=ref, obj="img.jpg", fqn=fqn) == (
        "PUT",
        f"http://10.0.0.1:8080/b-0123456789abcdef/img.jpg?etl_fqn={escaped_fqn}",
    )
    assert build_request(
        ep, comm_type=HPULL, arg_type="fqn", bucket_ref=ref, obj="img.jpg", fqn=fqn, etl_args="a b&c"
    ) == (
        "GET",
        f"http://10.0.0.1:8080/ais%2F@%23%2Fb-0123456789abcdef%2Fimg.jpg?etl_args=a+b%26c&etl_fqn={escaped_fqn}",
    )
    assert build_request(ep, comm_type=HPUSH, arg_type="", bucket_ref=ref, obj=name, etl_args="x=1")[1] == (
        "http://10.0.0.1:8080/b-0123456789abcdef/dir/a%20b.jpg?etl_args=x%3D1"
    )
    with pytest.raises(ValidationError, match="protocol '2025'"):
        build_request(
            ep, comm_type=HPUSH, arg_type="", bucket_ref=ref, obj=name, etl_args="x", protocol="2024"
        )
    with pytest.raises(ValidationError, match="io://"):
        build_request(ep, comm_type=IO, arg_type="", bucket_ref=ref, obj=name, etl_args="x")
    with pytest.raises(ValidationError, match="protocol must be one of"):
        build_request(ep, comm_type=HPUSH, arg_type="", bucket_ref=ref, obj=name, protocol="2023")
    for comm, arg in ((HPUSH, "url"), (HREV, "fqn"), (IO, "fqn"), ("hpush", "")):
        with pytest.raises(ValidationError):
            build_request(ep, comm_type=comm, arg_type=arg, bucket_ref=ref, obj=name, fqn=fqn)
    with pytest.raises(ValidationError):
        build_request(ep, comm_type=HPUSH, arg_type="fqn", bucket_ref=ref, obj=name)
    # December 2024 fqn requests need no bucket; the others do
    assert build_request(
        ep, comm_type=HPULL, arg_type="fqn", bucket_ref=None, obj="i", fqn=fqn, protocol="2024"
    )[1].endswith("/%2Fais%2Fmp1%2F@ais%2Fsrc%2F%25ob%2Fimg.jpg")
    with pytest.raises(ValidationError):
        build_request(ep, comm_type=HPUSH, arg_type="", bucket_ref=None, obj=name)


def test_protocol_probe_names_a_missing_file_the_declared_way() -> None:
    from airflow_ais_etl.dataplane.protoprobe import probe_request
    from airflow_ais_etl.etl.msg import InitSpecMsg

    ep = PodEndpoint("t1", "p", "http://10.0.0.1:8080")
    msg = InitSpecMsg(name="probe-etl", comm_type=HPUSH, arg_type="fqn", spec="x")
    # 2025: the file the query names is missing; the path names /dev/null (read by a 2024 server)
    assert probe_request(ep, msg, "/missing/x") == (
        "PUT",
        "http://10.0.0.1:8080/%2Fdev%2Fnull?etl_fqn=%252Fmissing%252Fx",
    )
    # 2024: the path names the missing file, no query (a 2025 server transforms the empty body)
    old = InitSpecMsg(name="probe-etl", comm_type=HPULL, arg_type="fqn", spec="x", protocol="2024")
    assert probe_request(ep, old, "/missing/x") == ("GET", "http://10.0.0.1:8080/%2Fmissing%2Fx")
