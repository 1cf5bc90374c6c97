"""Inline transforms keep one lease per process and ETL across a burst of calls, dropped when idle."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.cluster.inlinelease import LINGER_SECONDS
from airflow_ais_etl.cluster.leases import acting_as, this_holder
from airflow_ais_etl.etl.leases import EtlInUseError
from airflow_ais_etl.etl.origin import Origin
from tests.local.conftest import UPPER

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

pytestmark = pytest.mark.integration

OTHER_RUN = Origin(dag_id="lease_dag", task_id="teardown", run_id="other-run", try_number="1", map_index="-1")


def test_a_burst_of_inline_calls_shares_one_lease_that_a_stop_sees_until_it_lingers_out(
    api: AisEtl, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"abc")
    api.init_code("inline-etl", UPPER)
    ids = set()
    for _ in range(5):
        assert api.transform_object("inline-etl", str(src), "a.txt") == b"ABC"
        leases = api.leases("inline-etl")
        assert [(lease.purpose, lease.holder) for lease in leases] == [("inline transform", this_holder())]
        ids.add(leases[0].id)
    assert len(ids) == 1  # taken once, not per call

    with acting_as(OTHER_RUN), pytest.raises(EtlInUseError, match="inline transform"):
        api.stop("inline-etl")  # another holder's stop sees the burst's lease
    assert api.info("inline-etl").state == "running"

    deadline = time.monotonic() + LINGER_SECONDS + 10
    while api.leases("inline-etl") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert api.leases("inline-etl") == []  # dropped once idle
    with acting_as(OTHER_RUN):
        assert api.stop("inline-etl") is True
