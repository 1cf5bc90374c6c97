"""Every communication type x argument type the model allows, against a real runtime process."""

from __future__ import annotations

import hashlib
import json
import sys
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from tests.runtime.conftest import CallbackTarget, RuntimeFactory

UPPER = """
def transform(data):
    return data.upper()
"""

CHUNK_SIZES = """
def transform(reader, writer):
    sizes = [len(chunk) for chunk in reader]
    writer.write(",".join(map(str, sizes)).encode())
"""

# The AIS documentation examples, unchanged.
DOC_MD5 = """
import hashlib

def transform(input_bytes):
    md5 = hashlib.md5()
    md5.update(input_bytes)
    return md5.hexdigest().encode()
"""

DOC_MD5_CHUNKED = """
import hashlib

def transform(reader, writer):
    checksum = hashlib.md5()
    for b in reader:
        checksum.update(b)
    writer.write(checksum.hexdigest().encode())
"""

DOC_MD5_IO = """
import hashlib
import sys

md5 = hashlib.md5()
for chunk in sys.stdin.buffer.read():
    md5.update(chunk)
sys.stdout.buffer.write(md5.hexdigest().encode())
"""

IO_MD5_FIXED = """
import hashlib
import sys

sys.stdout.buffer.write(hashlib.md5(sys.stdin.buffer.read()).hexdigest().encode())
"""


def esc(value: str) -> str:
    """Go's url.PathEscape, as the target uses it."""
    return quote(value, safe="$&+:=@")


def io_query(command: list[str]) -> str:
    return urlencode([("command", "bash"), ("command", "-c"), ("command", " ".join(command))])


NAMES = ["plain.txt", "dir/a b.jpg", "100%.bin", "hash#tag", "what?.txt", "ünï cødé/ファイル.dat"]


# ----------------------------------------------------------------------------------- hpush


def test_health_and_hpush_bytes(runtime: RuntimeFactory) -> None:
    server = runtime.spawn(UPPER)
    status, body, _ = server.request("GET", "/health")
    assert (status, body) == (200, b"Running")
    for name in NAMES:
        status, body, resp = server.request("PUT", "/src/" + quote(name), body=b"hello " + name.encode())
        assert status == 200
        assert body == (b"hello " + name.encode()).upper()
        assert resp.getheader("Content-Length") == str(len(body))


def test_hpush_chunked_request_body(runtime: RuntimeFactory) -> None:
    server = runtime.spawn(UPPER)
    conn = server.connect()
    conn.request("PUT", "/src/obj", body=iter([b"abc", b"def", b"g" * 70000]), encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read() == b"ABCDEF" + b"G" * 70000
    conn.close()


def test_hpush_fqn(runtime: RuntimeFactory, tmp_path: Path) -> None:
    disk = tmp_path / "mp1" / "@ais" / "src" / "%ob"
    disk.mkdir(parents=True)
    server = runtime.spawn(UPPER, COMM_TYPE="hpush://", ARG_TYPE="fqn")
    for name in ["a b.jpg", "pct%41.bin", "x#y?z", "ünï"]:
        path = disk / name
        path.write_bytes(b"content of " + name.encode())
        status, body, _ = server.request("PUT", "/" + esc(str(path)), body=b"")
        assert status == 200
        assert body == (b"content of " + name.encode()).upper()
    status, body, _ = server.request("PUT", "/" + esc(str(disk / "missing")), body=b"")
    assert status == 404
    assert b"missing" in body


def test_hpush_fqn_chunked(runtime: RuntimeFactory, tmp_path: Path) -> None:
    obj = tmp_path / "big.bin"
    obj.write_bytes(b"x" * 25)
    server = runtime.spawn(CHUNK_SIZES, COMM_TYPE="hpush://", ARG_TYPE="fqn", CHUNK_SIZE="10")
    status, body, _ = server.request("PUT", "/" + esc(str(obj)), body=b"")
    assert (status, body) == (200, b"10,10,5")


# ----------------------------------------------------------------------------------- hpull / hrev


@pytest.mark.parametrize("comm", ["hpull://", "hrev://"])
def test_pull_bytes_with_escaped_names(runtime: RuntimeFactory, callback: CallbackTarget, comm: str) -> None:
    server = runtime.spawn(UPPER, COMM_TYPE=comm, AIS_TARGET_URL=callback.url)
    for name in NAMES:
        uname = f"ais/@#/src/{name}"
        callback.objects[uname] = b"data of " + name.encode()
        callback.seen.clear()
        path = "/" + esc(uname)
        status, body, _ = server.request(
            "GET",
            path + "?etl_name=my-etl&archpath=a%2Fb&x=1",
            headers={"X-Extra": "1", "Range": "bytes=0-1"},
        )
        assert status == 200, body
        assert body == (b"data of " + name.encode()).upper()
        # The callback got the path exactly as escaped by the target, and the query minus etl_name.
        assert callback.seen == [(esc(uname), "archpath=a%2Fb&x=1")]


def test_hpull_url(runtime: RuntimeFactory, callback: CallbackTarget) -> None:
    code = """
    def transform(url):
        return url.encode()
    """
    server = runtime.spawn(code, COMM_TYPE="hpull://", ARG_TYPE="url", AIS_TARGET_URL=callback.url)
    path = "/" + esc("ais/@#/src/dir/a b.jpg")
    status, body, _ = server.request("GET", path + "?etl_name=e1&k=v")
    assert status == 200
    assert body.decode() == callback.url + "/ais%2F@%23%2Fsrc%2Fdir%2Fa%20b.jpg?k=v"
    assert callback.seen == []  # url: the user code fetches, not the runtime


def test_hpull_fqn(runtime: RuntimeFactory, tmp_path: Path) -> None:
    obj = tmp_path / "dir with space" / "obj#1"
    obj.parent.mkdir()
    obj.write_bytes(b"local bytes")
    server = runtime.spawn(UPPER, COMM_TYPE="hpull://", ARG_TYPE="fqn")
    status, body, _ = server.request("GET", "/" + esc(str(obj)))
    assert (status, body) == (200, b"LOCAL BYTES")


def test_hpull_chunked_streams_callback_body(runtime: RuntimeFactory, callback: CallbackTarget) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    callback.objects["ais/@#/src/big"] = payload
    code = """
    def transform(reader, writer):
        for chunk in reader:
            writer.write(chunk[::-1])
    """
    server = runtime.spawn(code, COMM_TYPE="hpull://", CHUNK_SIZE="65536", AIS_TARGET_URL=callback.url)
    conn = server.connect()
    for _ in range(3):  # keep-alive on both sides
        conn.request("GET", "/" + esc("ais/@#/src/big"))
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200
        assert resp.getheader("Transfer-Encoding") == "chunked"
        expected = b"".join(payload[i : i + 65536][::-1] for i in range(0, len(payload), 65536))
        assert body == expected
    conn.close()


def test_callback_error_is_502(runtime: RuntimeFactory, callback: CallbackTarget) -> None:
    server = runtime.spawn(UPPER, COMM_TYPE="hpull://", AIS_TARGET_URL=callback.url)
    status, body, _ = server.request("GET", "/" + esc("ais/@#/src/nope"))
    assert status == 502
    assert b"404" in body
    assert b"object ais/@#/src/nope does not exist" in body
    bad_secret = runtime.spawn(
        UPPER, COMM_TYPE="hrev://", AIS_TARGET_URL=callback.base + "/v1/etl/_object/WRONG"
    )
    status, body, _ = bad_secret.request("GET", "/" + esc("ais/@#/src/x"))
    assert status == 502
    assert b"400" in body
    assert b"unrecognized request source" in body


def test_callback_unreachable_is_502(runtime: RuntimeFactory) -> None:
    server = runtime.spawn(UPPER, COMM_TYPE="hpull://", AIS_TARGET_URL="http://127.0.0.1:9/v1/etl/_object/S")
    status, body, _ = server.request("GET", "/" + esc("ais/@#/src/x"))
    assert status == 502
    assert b"callback" in body


# ----------------------------------------------------------------------------------- io://


def test_io_doc_examples(runtime: RuntimeFactory) -> None:
    command = [sys.executable, str(runtime.next_code_file)]
    server = runtime.spawn(DOC_MD5_IO, COMM_TYPE="io://", AIS_ETL_IO_COMMAND=json.dumps(command))
    query = io_query(command)
    # The documented io example iterates over bytes (ints): it only works for an empty object...
    status, body, _ = server.request("PUT", "/src/empty?" + query, body=b"")
    assert (status, body) == (200, hashlib.md5(b"").hexdigest().encode())
    # ...and fails on real data; the failure is a 500 with the stderr tail, never an empty 200.
    status, body, _ = server.request("PUT", "/src/obj?" + query, body=b"some text :)\n")
    assert status == 500
    assert b"exited with code 1" in body
    assert b"TypeError" in body
    assert server.log_has("TypeError")  # stderr goes to the server log


def test_io_md5_and_command_checks(runtime: RuntimeFactory) -> None:
    command = [sys.executable, str(runtime.next_code_file)]
    server = runtime.spawn(IO_MD5_FIXED, COMM_TYPE="io://", AIS_ETL_IO_COMMAND=json.dumps(command))
    data = b"some text :)\n" * 1000
    status, body, _ = server.request("PUT", "/src/obj?" + io_query(command), body=data)
    assert (status, body) == (200, hashlib.md5(data).hexdigest().encode())
    status, body, _ = server.request("PUT", "/src/obj", body=data)
    assert (status, body) == (400, b"missing command to execute\n")
    status, body, _ = server.request("PUT", "/src/obj?" + io_query(["rm", "-rf", "/tmp/x"]), body=data)
    assert status == 403
    assert b"not the ETL's command" in body
    status, _, _ = server.request("GET", "/src/obj?" + io_query(command))
    assert status == 405


def test_io_large_output_streams(runtime: RuntimeFactory) -> None:
    code = """
    import sys
    data = sys.stdin.buffer.read()
    sys.stdout.buffer.write(data * 3)
    """
    command = [sys.executable, str(runtime.next_code_file)]
    server = runtime.spawn(code, COMM_TYPE="io://", AIS_ETL_IO_COMMAND=json.dumps(command))
    data = bytes(range(256)) * 2048  # 512 KiB in, 1.5 MiB out: over the buffering limit
    status, body, resp = server.request("PUT", "/src/obj?" + io_query(command), body=data)
    assert status == 200
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert body == data * 3


# ----------------------------------------------------------------------------------- doc examples


def test_doc_md5_hpush_and_chunked(runtime: RuntimeFactory) -> None:
    data = b"some text :)\n" * 5000
    plain = runtime.spawn(DOC_MD5)
    chunked = runtime.spawn(DOC_MD5_CHUNKED, CHUNK_SIZE="32768")
    for server in (plain, chunked):
        status, body, _ = server.request("PUT", "/transform/shard.in", body=data)
        assert (status, body) == (200, hashlib.md5(data).hexdigest().encode())


def test_reader_semantics(runtime: RuntimeFactory) -> None:
    code = """
    def transform(reader, writer):
        first = reader.read(3)
        it = next(iter(reader))
        rest = reader.read_all()
        writer.write(b"|".join([first, it, rest, reader.read(), reader.read(5)]))
    """
    server = runtime.spawn(code, CHUNK_SIZE="4")
    status, body, _ = server.request("PUT", "/b/o", body=b"0123456789abcdef")
    assert (status, body) == (200, b"012|3456|789abcdef||")
