"""A pull batch sent to a real runtime process, with a real gateway: with and without target batches."""

from __future__ import annotations

import http.client
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import pytest

from airflow_ais_etl.cluster import gateway as gateway_module
from airflow_ais_etl.cluster.bucketmap import register_bucket
from airflow_ais_etl.cluster.directput import grant, puts_store
from airflow_ais_etl.etl.naming import callback_path, uname
from airflow_ais_etl.runtime.http1.batchwire import BATCH_HEADER, decode_results, encode_items

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_ais_etl.cluster.gateway import GatewayServer
    from tests.io.conftest import Runtime

pytestmark = pytest.mark.integration

UPPER = "def transform(data):\n    if data == b'bad':\n        raise ValueError('refused')\n    return data.upper()\n"


def _refuse_batches(self: object, answer: object, limit: int) -> None:
    """What a target without batches does with one: an error without the batch header."""
    self.close_connection = True  # type: ignore[attr-defined]
    self._reply(400, "missing object uname after the secret")  # type: ignore[attr-defined]


@pytest.mark.parametrize("target_batches", [True, False], ids=["gateway-batches", "no-gateway-batches"])
def test_a_pull_batch_delivers_answers_and_fails_per_object(
    tmp_path: Path,
    gateway: tuple[GatewayServer, str],
    runtimes: Callable[..., Runtime],
    monkeypatch: pytest.MonkeyPatch,
    target_batches: bool,
) -> None:
    if not target_batches:
        monkeypatch.setattr(gateway_module._Handler, "_batch", _refuse_batches)
    server, buckets_file = gateway
    src_root, dst_root = tmp_path / "src", tmp_path / "dst"
    src_root.mkdir()
    dst_root.mkdir()
    src = register_bucket(buckets_file, str(src_root))
    dst = register_bucket(buckets_file, str(dst_root))
    token = grant(puts_store(str(tmp_path / "gateway")), dst.name, dst.extra["url"])
    for i in range(20):
        (src_root / f"o-{i}").write_bytes(f"object {i}".encode())
    (src_root / "bad").write_bytes(b"bad")

    def node(name: str) -> bytes:
        return f"{server.url}/{quote(uname('ais', dst.name, name), safe='')}?uuid={token}".encode()

    items = [(callback_path(uname("ais", src.name, f"o-{i}")), node(f"out/o-{i}")) for i in range(20)]
    items += [
        (callback_path(uname("ais", src.name, "o-0")), b""),  # no node URL: the result comes back
        (callback_path(uname("ais", src.name, "missing")), node("out/missing")),
        (callback_path(uname("ais", src.name, "bad")), node("out/bad")),
        (callback_path(uname("ais", src.name, "o-1")), node("out/forged").replace(token.encode(), b"forged")),
    ]
    rt = runtimes(tmp_path / "rt", UPPER, comm_type="hpull://", target_url=server.callback_base())
    parts = urlsplit(rt.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    conn.request("GET", "/", body=encode_items(items), headers={BATCH_HEADER: str(len(items))})
    resp = conn.getresponse()
    assert resp.status == 200
    results = decode_results(resp.read(), len(items))
    for i in range(20):
        assert results[i] == (204, str(len(f"object {i}")).encode())
        assert (dst_root / "out" / f"o-{i}").read_bytes() == f"OBJECT {i}".encode()
    assert results[20] == (200, b"OBJECT 0")
    assert results[21][0] == 502
    assert b"404" in results[21][1]
    assert results[22][0] == 500
    assert b"ValueError: refused" in results[22][1]
    assert results[23][0] == 403
    assert b"no running job lets pods write" in results[23][1]
    assert sorted(p.name for p in (dst_root / "out").iterdir()) == sorted(f"o-{i}" for i in range(20))
