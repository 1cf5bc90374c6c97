"""Batched small objects, server side: advertised in /health, one verdict per object, byte-exact."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from airflow_ais_etl.runtime.http1.batchwire import (
    ALONE,
    BATCH_HEADER,
    BATCH_VERSION,
    NOT_RUN,
    decode_results,
    encode_items,
)

if TYPE_CHECKING:
    from tests.runtime.conftest import RuntimeFactory

WITH_CONTEXT = """
def transform(data, path, etl_args):
    if data.startswith(b"fail"):
        raise ValueError("refused " + path)
    return path.encode() + b"|" + etl_args.encode() + b"|" + data[::-1]
"""

CHUNKED = """
def transform(reader, writer):
    for chunk in reader:
        writer.write(chunk)
"""

OBJECTS = [
    ("empty", b""),
    ("small.bin", bytes(range(256)) * 16),
    ("fail-me", b"fail: this one raises"),
    ("ünï cödé/what?#%.bin", b"awkward"),
    ("big.bin", bytes(range(251)) * 800),
]


def _put_batch(server, objects: list[tuple[str, bytes]], query: str = "") -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    body = encode_items([(f"/src/{name}", data) for name, data in objects])
    status, answer, _ = server.request(
        "PUT", "/src/" + query, body=body, headers={BATCH_HEADER: str(len(objects))}
    )
    return status, answer


def test_a_batch_gets_one_verdict_per_object_byte_exact(runtime: RuntimeFactory) -> None:
    server = runtime.spawn(WITH_CONTEXT)
    status, _, resp = server.request("GET", "/health")
    assert status == 200
    assert resp.getheader(BATCH_HEADER) == BATCH_VERSION
    status, answer = _put_batch(server, OBJECTS, "?" + urlencode({"etl_args": "k=v"}))
    assert status == 200
    results = decode_results(answer, len(OBJECTS))
    assert results[0][0] == 200  # the first object always runs
    for (name, data), (code, payload) in zip(OBJECTS, results, strict=True):
        if code == NOT_RUN:  # the batch used up its time budget (a busy machine): send it alone
            status, payload, _ = server.request(
                "PUT", "/src/" + quote(name) + "?etl_args=k%3Dv", body=data, headers={BATCH_HEADER: ALONE}
            )
            code = status
        if name == "fail-me":
            assert code == 500
            assert b"refused src/fail-me" in payload
            assert b"ValueError" in payload
        else:
            assert (code, payload) == (200, f"src/{name}|k=v|".encode() + data[::-1])
    # a malformed batch is refused as a whole, and the pod keeps serving
    body = encode_items([("/src/a", b"abc")])
    status, answer, _ = server.request("PUT", "/src/", body=body[:-1], headers={BATCH_HEADER: "1"})
    assert status == 400
    assert b"bad batch request" in answer
    # an object of a failed batch, sent alone, is a plain request (run in a thread by the pod)
    status, answer, _ = server.request("PUT", "/src/x", body=b"abc", headers={BATCH_HEADER: ALONE})
    assert (status, answer) == (200, b"src/x||cba")


def test_a_streaming_transform_does_not_offer_batches(runtime: RuntimeFactory) -> None:
    server = runtime.spawn(CHUNKED, CHUNK_SIZE="4")
    status, _, resp = server.request("GET", "/health")
    assert status == 200
    assert resp.getheader(BATCH_HEADER) is None
