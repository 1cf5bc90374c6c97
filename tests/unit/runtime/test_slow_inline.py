"""A worker sends its PUTs to threads after a slow inline answer, not after a wait for a CPU."""

from __future__ import annotations

import pytest

from airflow_ais_etl.runtime import server
from airflow_ais_etl.runtime.server import SLOW_INLINE_SECONDS, THREADED_SPELL_SECONDS, Worker


class _Waits:
    """The loop thread's CPU wait so far (``timebudget.cpu_wait``), set by the test."""

    def __init__(self) -> None:
        self.seconds = 0.0


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> _Waits:
    fake = _Waits()
    monkeypatch.setattr(server, "cpu_wait", lambda: fake.seconds)
    return fake


def _worker() -> Worker:
    worker = object.__new__(Worker)  # only the clock state: no sockets
    worker.threaded_until = 0.0
    worker.measured_until = 0.0
    return worker


def test_a_first_long_answer_only_starts_measuring(waits: _Waits) -> None:
    worker = _worker()
    worker._took_long(100.0, 0.010, None)
    assert worker.threaded_until == 0.0  # PUTs stay inline
    assert worker.measured_until == pytest.approx(100.010 + THREADED_SPELL_SECONDS)


def test_a_measured_answer_held_up_by_a_wait_for_a_cpu_is_not_slow(waits: _Waits) -> None:
    worker = _worker()
    worker._took_long(100.0, 0.010, None)
    waits.seconds = 2.008  # 8 ms of waiting for a CPU during the next long answer
    worker._took_long(100.5, 0.010, 2.000)  # 10 ms, 2 of them its own
    worker._took_long(100.6, 0.0079 + SLOW_INLINE_SECONDS, 2.000)  # just under the limit of its own
    assert worker.threaded_until == 0.0
    assert worker.measured_until == pytest.approx(100.010 + THREADED_SPELL_SECONDS)


def test_a_measured_answer_slow_by_itself_sends_puts_to_threads(waits: _Waits) -> None:
    worker = _worker()
    worker._took_long(100.0, 0.300, None)
    waits.seconds = 2.001  # 1 ms of waiting: a transform that computes or sleeps
    worker._took_long(100.5, 0.300, 2.000)
    assert worker.threaded_until == pytest.approx(100.8 + THREADED_SPELL_SECONDS)
    assert worker.measured_until == 0.0  # the next long answer after the spell starts over


def test_the_real_wait_is_the_calling_threads_and_only_grows() -> None:
    first = server.cpu_wait()
    assert 0.0 <= first <= server.cpu_wait()
