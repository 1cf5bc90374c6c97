"""A gateway given a put key (the Kubernetes sidecar) takes direct puts under signed grants only.

Real HTTP on 127.0.0.1. The destination is named by the grant, not by the bucket map, so a job
needs no file next to the gateway: a local directory or an object store (``local://``, the
object-store code path).
"""

from __future__ import annotations

import http.client
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from airflow_ais_etl.cluster.bucketmap import bucket_name
from airflow_ais_etl.cluster.directput import grant, puts_store
from airflow_ais_etl.cluster.gateway import GatewayServer
from airflow_ais_etl.cluster.sealedgrants import (
    GRANTS_PREFIX,
    REVOKE_HEADER,
    SealedTokens,
    revocation_proof,
    seal,
)
from airflow_ais_etl.dataplane.storage.base import TEMP_PREFIX
from airflow_ais_etl.etl.naming import uname

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

SECRET = "SeCrEtPaTh"
KEY = "the-etl-put-key"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayServer]:
    server = GatewayServer(("127.0.0.1", 0), SECRET, str(tmp_path / "state" / "buckets.json"), put_key=KEY)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _put(server: GatewayServer, bucket: str, obj: str, token: str, body: bytes, chunked: bool = False):
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), port, timeout=10)
    path = f"/v1/etl/_object/{SECRET}/{quote(uname('ais', bucket, obj), safe='')}?uuid={token}"
    try:
        if chunked:
            conn.putrequest("PUT", path)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for i in range(0, len(body), 7):
                piece = body[i : i + 7]
                conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            conn.send(b"0\r\n\r\n")
        else:
            conn.request("PUT", path, body)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def _later() -> int:
    return int(time.time()) + 60


@pytest.mark.parametrize("kind", ["directory", "object-store"])
def test_a_signed_grant_lets_pods_write_whole_and_chunked(gateway: GatewayServer, tmp_path: Path, kind: str):
    root = tmp_path / "dst"
    root.mkdir()
    url = str(root) if kind == "directory" else f"local://{root}"
    bucket, norm = bucket_name(url)
    token = seal(KEY.encode(), bucket, norm, _later())
    assert _put(gateway, bucket, "a/one.bin", token, b"first object") == (200, "")
    assert _put(gateway, bucket, "two ü.bin", token, b"second, chunked " * 5, chunked=True) == (200, "")
    assert (root / "a" / "one.bin").read_bytes() == b"first object"
    assert (root / "two ü.bin").read_bytes() == b"second, chunked " * 5
    assert [p for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX)] == []


def test_forged_foreign_and_expired_grants_write_nothing(gateway: GatewayServer, tmp_path: Path) -> None:
    root, other = tmp_path / "dst", tmp_path / "other"
    root.mkdir()
    other.mkdir()
    bucket, norm = bucket_name(str(root))
    other_bucket, other_norm = bucket_name(str(other))
    cases = {
        "another key": seal(b"guessed", bucket, norm, _later()),
        "another bucket": seal(KEY.encode(), other_bucket, other_norm, _later()),
        "expired": seal(KEY.encode(), bucket, norm, int(time.time()) - 1),
        # a grant of the local backend's kind means nothing to a gateway that checks signatures
        "a file grant": grant(puts_store(str(tmp_path / "state")), bucket, norm),
    }
    answers = {name: _put(gateway, bucket, "x.bin", token, b"payload") for name, token in cases.items()}
    assert {name: status for name, (status, _) in answers.items()} == dict.fromkeys(cases, 403)
    assert "not made with this ETL's put key" in answers["another key"][1]
    assert f"is for bucket '{other_bucket}', not '{bucket}'" in answers["another bucket"][1]
    assert "expired" in answers["expired"][1]
    assert "not made with this ETL's put key" in answers["a file grant"][1]
    assert list(root.iterdir()) == []
    assert list(other.iterdir()) == []


def _delete(server: GatewayServer, path: str, proof: str | None) -> tuple[int, str]:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(str(host), port, timeout=10)
    try:
        conn.request("DELETE", path, headers={REVOKE_HEADER: proof} if proof is not None else {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_a_job_revokes_its_grant_and_later_puts_store_nothing(gateway: GatewayServer, tmp_path: Path) -> None:
    root = tmp_path / "dst"
    root.mkdir()
    bucket, norm = bucket_name(str(root))
    tokens = SealedTokens(KEY.encode(), bucket, norm)
    assert _put(gateway, bucket, "before.bin", tokens.current(), b"in time") == (200, "")
    path = GRANTS_PREFIX + tokens.grant_id
    assert _delete(gateway, path, None)[0] == 403
    assert _delete(gateway, path, revocation_proof(b"guessed", tokens.grant_id))[0] == 403
    assert _delete(gateway, "/v1/etl/_object/x", "y")[0] == 404
    assert _put(gateway, bucket, "still.bin", tokens.current(), b"still granted") == (200, "")
    tokens.revoke([gateway.url])  # the engine's side, over HTTP
    status, text = _put(gateway, bucket, "after.bin", tokens.current(), b"too late")
    assert status == 403
    assert "the job ended (grant revoked)" in text
    assert sorted(p.name for p in root.iterdir()) == ["before.bin", "still.bin"]


def test_a_gateway_of_grant_files_refuses_revocations(tmp_path: Path) -> None:
    server = GatewayServer(("127.0.0.1", 0), SECRET, str(tmp_path / "state" / "buckets.json"))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        status, text = _delete(server, GRANTS_PREFIX + "abc", revocation_proof(KEY.encode(), "abc"))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert status == 405
    assert "grants file" in text


def test_a_destination_the_gateway_cannot_open_is_a_clear_error(
    gateway: GatewayServer, tmp_path: Path
) -> None:
    missing = tmp_path / "not-there"
    bucket, norm = bucket_name(str(missing))
    status, text = _put(gateway, bucket, "x.bin", seal(KEY.encode(), bucket, norm, _later()), b"payload")
    assert status == 500
    assert "this target's gateway cannot open destination" in text
    assert "init the ETL without direct put" in text
    assert not missing.exists()
