"""Local pods' CPU is a rate over a sampling window, so a busy pod shows a real figure, not 0."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.cluster.local.podmetrics import cpu_cores

if TYPE_CHECKING:
    from airflow_ais_etl.service import AisEtl

# The module spins a thread for a few seconds at import, as a pod busy with work would.
BURNER = """
import threading, time

def _burn():
    end = time.monotonic() + 15
    while time.monotonic() < end:
        sum(range(1000))

threading.Thread(target=_burn, daemon=True).start()

def transform(data):
    return data
"""


def test_cpu_cores_is_the_cpu_seconds_used_per_wall_second() -> None:
    before = {1: 10.0, 2: 3.0, 3: 7.0}
    after = {1: 10.5, 2: 3.0, 4: 99.0}  # pid 3 ended, pid 4 is new: neither counts
    assert cpu_cores(before, after, 0.25) == pytest.approx(2.0)
    assert cpu_cores(before, after, 0.0) == 0.0


@pytest.mark.integration
def test_a_busy_pod_shows_the_cores_it_uses(api: AisEtl) -> None:
    api.init_code("burner", BURNER)
    busy = api.metrics("burner")
    assert [m.target_id for m in busy] == ["t1", "t2"]
    assert all(m.cpu > 0.05 for m in busy), busy  # an instant reading said 0.0 here
    assert api.stop("burner") is True
