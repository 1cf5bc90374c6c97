"""Direct put into an object store on the local backend: the targets' gateways write, not the engine.

The object store is ``local://DIR`` (fsspec's local file system through Airflow's
``ObjectStoragePath``: the object-store code path, visible to every process). The gateway opens it
with its own environment, as it opens object-store sources for hpull; a destination that needs the
job's Airflow connection is written by the engine, and the stats say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from tests.offline.conftest import make_tree, objects, reverse

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

pytestmark = pytest.mark.integration

REVERSE = "def transform(data):\n    return data[::-1] + b'!'\n"


@pytest.mark.parametrize("comm_type", ["hpull://", "hpush://"])
def test_pods_deliver_into_an_object_store_and_the_engine_carries_no_result(
    api: AisEtl, tmp_path: Path, comm_type: str
) -> None:
    src, dst = tmp_path / "src", tmp_path / "store"
    data = make_tree(src, 30, big=2)  # two objects above 1 MiB: streamed, not batched
    dst.mkdir()
    api.init_code("store-put", REVERSE, comm_type=comm_type, direct_put=True)
    stats = api.transform_bucket("store-put", str(src), f"local://{dst}", OfflineOptions(num_workers=4))
    assert stats["state"] == "done", stats["errors"]
    assert objects(dst) == {name: reverse(payload) for name, payload in data.items()}
    assert stats["direct_put_objects"] == len(data)
    assert stats["bytes_via_engine"] == 0
    assert stats["bytes_out"] == sum(len(reverse(p)) for p in data.values())
    again = api.transform_bucket("store-put", str(src), f"local://{dst}", OfflineOptions(skip_existing=True))
    assert (again["objects"], again["skipped"]) == (0, len(data))
    api.stop("store-put")


def test_a_destination_needing_the_jobs_connection_is_written_by_the_engine(
    api: AisEtl, tmp_path: Path
) -> None:
    src, dst = tmp_path / "src", tmp_path / "store"
    data = make_tree(src, 12, big=0)
    dst.mkdir()
    api.init_code("store-conn", REVERSE, comm_type="hpull://", direct_put=True)
    stats = api.transform_bucket(
        "store-conn", str(src), f"local://{dst}", OfflineOptions(), dst_conn_id="team_store"
    )
    assert stats["state"] == "done", stats["errors"]
    assert objects(dst) == {name: reverse(payload) for name, payload in data.items()}
    assert stats["direct_put_objects"] == 0
    assert stats["bytes_via_engine"] == stats["bytes_out"] > 0
    api.stop("store-conn")
