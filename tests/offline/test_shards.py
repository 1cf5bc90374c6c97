"""Hash shards end to end: N jobs over one bucket write every object once and resume on their own."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from tests.offline.conftest import REVERSE, make_tree, objects, reverse, stamps

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl


@pytest.mark.integration
def test_shards_split_a_bucket_and_resume_each_on_its_own(api: AisEtl, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = make_tree(src, 40, big=0)
    api.init_code("shard-etl", REVERSE)
    first = api.transform_bucket("shard-etl", str(src), str(dst), OfflineOptions(shard=(0, 3)))
    done_first = objects(dst)
    assert first["objects"] == first["planned_objects"] == len(done_first) > 0
    before = stamps(dst, sorted(done_first))
    # shard 0 again, resuming: everything it did is skipped, nothing rewritten
    again = api.transform_bucket(
        "shard-etl", str(src), str(dst), OfflineOptions(shard=(0, 3), skip_existing=True)
    )
    assert (again["objects"], again["skipped"]) == (0, first["objects"])
    # the other shards resume too: their notes are their own, shard 0's results are left alone
    counts = [first["objects"]]
    for k in (1, 2):
        stats = api.transform_bucket(
            "shard-etl", str(src), str(dst), OfflineOptions(shard=(k, 3), skip_existing=True)
        )
        assert stats["skipped"] == 0
        counts.append(stats["objects"])
    assert sum(counts) == len(data)
    assert objects(dst) == {n: reverse(p) for n, p in data.items()}
    assert stamps(dst, sorted(done_first)) == before
    api.stop("shard-etl")
