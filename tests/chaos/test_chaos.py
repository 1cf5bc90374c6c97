"""A bounded, seeded chaos run in the default test run (the long one: ``python -m tests.chaos.soak``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psutil
import pytest

from tests.chaos.rounds import ETL, Chaos
from tests.local.conftest import processes_under

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

ROUNDS = 10


@pytest.mark.integration
@pytest.mark.parametrize("seed", [1313])
def test_chaos_rounds_lose_nothing_and_leave_nothing_running(
    api: AisEtl, home: Path, tmp_path: Path, seed: int
) -> None:
    chaos = Chaos(api, tmp_path, seed)
    for index in range(ROUNDS):
        chaos.round(index)
    assert chaos.tally.rounds == ROUNDS
    assert chaos.tally.aborted, chaos.tally.line()  # the seed makes events land mid-job
    api.delete(ETL, force=True)
    left = processes_under(home)
    assert not left, [p.cmdline() for p in left]
    listening = {tuple(c.laddr) for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    assert chaos.addresses
    assert not listening & chaos.addresses
