"""AIStore's FastAPI, Flask and multi-threaded HTTP servers behind the engine, byte for byte.

Each server runs as an init-spec pod; every case sends what an ETL of that comm type, arg type,
``etl_args`` and direct put would send (docs/protocol.md), offline and inline.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING
from urllib.parse import unquote

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions, run_offline
from airflow_ais_etl.dataplane.inline import transform_object
from airflow_ais_etl.dataplane.storage.base import TEMP_PREFIX
from tests.ais_servers.conftest import make_bucket, server_params, variant

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.etl.msg import InitMsg
    from airflow_ais_etl.service import AisEtl

pytestmark = pytest.mark.integration

ARGS = "k=v &x/ü"


@dataclasses.dataclass(frozen=True)
class Case:
    comm_type: str
    arg_type: str = ""
    etl_args: str = ""
    direct_put: bool = False

    def __str__(self) -> str:
        parts = [self.comm_type[:-3], self.arg_type or "bytes"]
        parts += ["args"] if self.etl_args else []
        parts += ["direct"] if self.direct_put else []
        return "-".join(parts)


OFFLINE = [
    Case("hpush://"),
    Case("hpush://", "fqn"),
    Case("hpull://"),
    Case("hpull://", "fqn"),
    Case("hrev://"),
    Case("hpush://", etl_args=ARGS),
    Case("hpull://", "fqn", etl_args=ARGS),
    Case("hpush://", direct_put=True),
    Case("hpush://", "fqn", etl_args=ARGS, direct_put=True),
    Case("hpull://", etl_args=ARGS, direct_put=True),
    Case("hpull://", "fqn", direct_put=True),
]
WS = [
    Case("ws://"),
    Case("ws://", "fqn", etl_args=ARGS),
    Case("ws://", etl_args=ARGS, direct_put=True),
    Case("ws://", "fqn", direct_put=True),
]
INLINE = [
    Case("hpush://"),
    Case("hpush://", "fqn", etl_args=ARGS),
    Case("hpull://", etl_args=ARGS),
    Case("hpull://", "fqn"),
    Case("hrev://"),
]


@pytest.fixture(scope="module")
def src_bucket(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("ais-src") / "src"
    return root, make_bucket(root, 12)


@pytest.mark.parametrize("ais_server", server_params(), indirect=True)
@pytest.mark.parametrize("case", OFFLINE, ids=str)
def test_offline_byte_exact(
    ais_server: tuple[AisEtl, InitMsg], src_bucket: tuple[Path, dict[str, bytes]], tmp_path: Path, case: Case
) -> None:
    api, msg = ais_server
    src, data = src_bucket
    dst = tmp_path / "dst"
    job_msg = variant(msg, case.comm_type, case.arg_type, direct_put=case.direct_put)
    stats = run_offline(
        api.backend, job_msg, str(src), str(dst), OfflineOptions(num_workers=4, etl_args=case.etl_args)
    )
    assert stats["state"] == "done", stats["errors"]
    assert stats["objects"] == len(data)
    bucket = api.backend.bucket_ref(str(src)).name
    for name, payload in data.items():
        got = (dst / name).read_bytes()
        check_result(got, case, name, payload, bucket)
    assert not [p for p in dst.rglob("*") if p.name.startswith(TEMP_PREFIX)]
    if case.direct_put:
        assert stats["direct_put_objects"] == len(data)
        assert stats["bytes_via_engine"] == 0
        assert stats["bytes_out"] == sum(len((dst / n).read_bytes()) for n in data)
    else:
        assert stats["direct_put_objects"] == 0
        assert stats["bytes_via_engine"] == stats["bytes_out"] > 0


@pytest.mark.parametrize("ais_server", server_params("fastapi"), indirect=True)
@pytest.mark.parametrize("case", WS, ids=str)
def test_ws_offline_byte_exact(
    ais_server: tuple[AisEtl, InitMsg], src_bucket: tuple[Path, dict[str, bytes]], tmp_path: Path, case: Case
) -> None:
    """ws:// (FastAPI is AIS's server with a /ws endpoint): one persistent connection per worker."""
    test_offline_byte_exact(ais_server, src_bucket, tmp_path, case)
    api, msg = ais_server
    src, data = src_bucket
    result = asyncio.run(
        transform_object(
            api.backend,
            variant(msg, "ws://", case.arg_type),
            api.backend.endpoints(msg.name),
            str(src),
            "d1/o1.txt",
            etl_args=case.etl_args,
        )
    )
    check_result(result["data"], case, "d1/o1.txt", data["d1/o1.txt"], api.backend.bucket_ref(str(src)).name)


@pytest.mark.parametrize("ais_server", server_params(), indirect=True)
@pytest.mark.parametrize("case", INLINE, ids=str)
def test_inline_byte_exact(
    ais_server: tuple[AisEtl, InitMsg], src_bucket: tuple[Path, dict[str, bytes]], case: Case
) -> None:
    api, msg = ais_server
    src, data = src_bucket
    job_msg = variant(msg, case.comm_type, case.arg_type)
    endpoints = api.backend.endpoints(msg.name)
    bucket = api.backend.bucket_ref(str(src)).name
    for name in ("d1/o1.txt", "d1/obj 4%41.bin", "big/blob.bin"):
        result = asyncio.run(
            transform_object(api.backend, job_msg, endpoints, str(src), name, etl_args=case.etl_args)
        )
        check_result(result["data"], case, name, data[name], bucket)


def check_result(got: bytes, case: Case, name: str, payload: bytes, bucket: str) -> None:
    """Byte-exact result; with etl_args the server appends ``|args|path`` (path as AIS passes it)."""
    if not case.etl_args:
        assert got == payload[::-1], f"{case} {name}: {len(got)} bytes, expected {len(payload)}"
        return
    head = payload[::-1] + f"|{case.etl_args}|".encode()
    assert got.startswith(head), f"{case} {name}: args did not arrive: {got[len(payload) :]!r}"
    path = got[len(head) :].decode().lstrip("/")
    # FastAPI/Flask pass the decoded route path; the multi-threaded server the raw (escaped) one
    if case.comm_type == "ws://":
        want = name  # the control message's "path" is the object name (websocket_comm.go createTask)
    elif case.comm_type == "hpush://":
        want = f"{bucket}/{name}"
    else:
        want = f"ais/@#/{bucket}/{name}"
    assert want in (path, unquote(path)), f"{case} {name}: path {path!r}"
