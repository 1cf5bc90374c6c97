"""AIS's own FastAPI server as a stage of a pipeline, beside the project's runtime, byte for byte."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.dataplane.storage.base import TEMP_PREFIX
from tests.ais_servers.conftest import make_bucket, pod_spec

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("ais-pipeline")]

UPPER = "def transform(data):\n    return data.upper()\n"
UPPER_ARGS = "def transform(data, path, etl_args):\n    return data.upper()\n"


def test_ais_server_as_last_and_as_first_stage(ais_api: AisEtl, tmp_path: Path) -> None:
    # AIS's server receives stage 1's bytes by PUT (as AIS pipelines deliver them) and, being the
    # last stage with direct put, delivers the result to the destination itself
    ais_api.init_spec("ais-rev-etl", pod_spec("fastapi"), comm_type="hpull", direct_put=True)
    ais_api.init_code("own-upper-etl", UPPER, arg_type="fqn")  # stage 1 reads the source file itself
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = make_bucket(src, 9)
    stats = ais_api.transform_bucket("own-upper-etl>>ais-rev-etl", str(src), str(dst), OfflineOptions())
    assert stats["state"] == "done"
    assert stats["direct_put_objects"] == len(data)
    assert stats["bytes_via_engine"] == 0
    for name, payload in data.items():
        assert (dst / name).read_bytes() == payload.upper()[::-1], name
    assert not [p for p in dst.rglob("*") if p.name.startswith(TEMP_PREFIX)]
    # the other way round, inline: AIS's server pulls the source, the project's runtime gets its bytes
    ais_api.init_code("own-args-etl", UPPER_ARGS)
    for name, payload in data.items():
        assert ais_api.transform_object("ais-rev-etl,own-args-etl", str(src), name) == payload[::-1].upper()
    # etl_args reach every stage, as AIS forwards them down a pipeline
    got = ais_api.transform_object(["ais-rev-etl", "own-args-etl"], str(src), "d1/o1.txt", etl_args="k=v")
    assert isinstance(got, bytes)
    assert got.startswith(data["d1/o1.txt"][::-1].upper() + b"|K=V|")
    # a ws:// stage after an hpush one, offline: the intermediate result goes over the WebSocket
    ais_api.init_spec("ais-ws-etl", pod_spec("fastapi"), comm_type="ws")
    dst_ws = tmp_path / "dst-ws"
    stats = ais_api.transform_bucket("own-args-etl>>ais-ws-etl", str(src), str(dst_ws), OfflineOptions())
    assert stats["objects"] == len(data)
    for name, payload in data.items():
        assert (dst_ws / name).read_bytes() == payload.upper()[::-1], name
