"""Fake clocks for ``runtime.timebudget``: its own wall clock and the calling thread's CPU wait."""

from __future__ import annotations

import pytest

from airflow_ais_etl.runtime import timebudget


class FakeClocks:
    """The wall clock and the CPU wait so far that ``timebudget`` reads, set by the test."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.waited = 0.0


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> FakeClocks:
    fake = FakeClocks()
    monkeypatch.setattr(timebudget, "monotonic", lambda: fake.wall)  # this module's clock only
    monkeypatch.setattr(timebudget, "cpu_wait", lambda: fake.waited)
    return fake
