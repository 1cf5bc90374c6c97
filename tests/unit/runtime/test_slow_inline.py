"""A worker sends its PUTs to threads after a slow inline answer, not after a wait for a CPU."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.runtime import timebudget
from airflow_ais_etl.runtime.server import SLOW_INLINE_SECONDS, THREADED_SPELL_SECONDS, Worker
from airflow_ais_etl.runtime.timebudget import TimeBudget

if TYPE_CHECKING:
    from tests.unit.runtime.conftest import FakeClocks


def _worker() -> Worker:
    worker = object.__new__(Worker)  # only the clock state: no sockets
    worker.threaded_until = 0.0
    worker.measured_until = 0.0
    return worker


def _measured_answer(clocks: FakeClocks, took: float, waited: float) -> TimeBudget:
    """The budget of an answer that took ``took`` seconds, ``waited`` of them waiting for a CPU."""
    budget = TimeBudget(SLOW_INLINE_SECONDS)
    clocks.wall += took
    clocks.waited += waited
    return budget


def test_a_first_long_answer_only_starts_measuring(clocks: FakeClocks) -> None:
    worker = _worker()
    worker._took_long(100.010, None)
    assert worker.threaded_until == 0.0  # PUTs stay inline
    assert worker.measured_until == pytest.approx(100.010 + THREADED_SPELL_SECONDS)


def test_a_measured_answer_held_up_by_a_wait_for_a_cpu_is_not_slow(clocks: FakeClocks) -> None:
    worker = _worker()
    worker._took_long(100.010, None)
    worker._took_long(clocks.wall, _measured_answer(clocks, 0.010, 0.008))  # 10 ms, 2 of them its own
    # just under the limit of its own
    worker._took_long(clocks.wall, _measured_answer(clocks, 0.0079 + SLOW_INLINE_SECONDS, 0.008))
    assert worker.threaded_until == 0.0
    assert worker.measured_until == pytest.approx(100.010 + THREADED_SPELL_SECONDS)


def test_a_measured_answer_slow_by_itself_sends_puts_to_threads(clocks: FakeClocks) -> None:
    worker = _worker()
    worker._took_long(100.300, None)
    clocks.wall = 100.5
    measured = _measured_answer(clocks, 0.300, 0.001)  # a transform that computes or sleeps
    worker._took_long(clocks.wall, measured)
    assert worker.threaded_until == pytest.approx(100.8 + THREADED_SPELL_SECONDS)
    assert worker.measured_until == 0.0  # the next long answer after the spell starts over


def test_the_real_wait_is_the_calling_threads_and_only_grows() -> None:
    first = timebudget.cpu_wait()
    assert 0.0 <= first <= timebudget.cpu_wait()
