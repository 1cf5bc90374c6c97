"""The call gate: as many transform calls at once as keep the process's cores busy, learnt per call."""

from __future__ import annotations

import threading
import time

import pytest

from airflow_ais_etl.runtime.callgate import MAX_CALLS, CallGate, process_target, thread_want_ns


class FakeThread:
    """A clock and a CPU-want meter that a test advances by hand."""

    def __init__(self) -> None:
        self.now = 0
        self.wanted = 0

    def run(self, gate: CallGate, wall_ms: int, want_ms: int) -> None:
        with gate.call():
            self.now += wall_ms * 1_000_000
            self.wanted += want_ms * 1_000_000


def _gate(target: int, meter: FakeThread) -> CallGate:
    return CallGate(target, want=lambda: meter.wanted, clock=lambda: meter.now)


def test_calls_that_compute_all_the_time_get_one_call_per_core() -> None:
    meter = FakeThread()
    gate = _gate(2, meter)
    for _ in range(20):
        meter.run(gate, wall_ms=30, want_ms=30)
    assert gate.limit == 2


@pytest.mark.parametrize(("want_ms", "limit"), [(50, 4), (10, 20), (1, 200)])
def test_calls_that_wait_get_as_many_calls_as_keep_the_cores_busy(want_ms: int, limit: int) -> None:
    meter = FakeThread()
    gate = _gate(2, meter)
    for _ in range(60):
        meter.run(gate, wall_ms=100, want_ms=want_ms)
    assert gate.limit == limit


def test_the_limit_follows_a_transform_whose_calls_change() -> None:
    meter = FakeThread()
    gate = _gate(1, meter)
    for _ in range(40):
        meter.run(gate, wall_ms=100, want_ms=5)  # waits on a remote service
    assert gate.limit == 20
    for _ in range(40):
        meter.run(gate, wall_ms=100, want_ms=100)  # then computes
    assert gate.limit == 1
    for _ in range(400):
        meter.run(gate, wall_ms=100, want_ms=0)
    assert gate.limit == MAX_CALLS


def test_a_call_waits_for_room_and_never_longer_than_the_patience() -> None:
    gate = CallGate(1, patience=0.3)
    inside = threading.Event()
    release = threading.Event()
    entered: list[float] = []

    def holder() -> None:
        with gate.call():
            inside.set()
            release.wait(10)

    def second() -> None:
        start = time.monotonic()
        with gate.call():
            entered.append(time.monotonic() - start)

    t1 = threading.Thread(target=holder)
    t1.start()
    assert inside.wait(10)
    t2 = threading.Thread(target=second)
    t2.start()
    t2.join(10)  # the holder never leaves: the second call goes in after the patience
    assert len(entered) == 1
    assert entered[0] >= 0.3
    assert gate.running == 1
    release.set()
    t1.join(10)
    assert gate.running == 0


def test_a_call_goes_in_as_soon_as_one_leaves() -> None:
    gate = CallGate(1, patience=30)
    order: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with gate.call():
            inside.set()
            release.wait(10)
            order.append("first leaves")

    def second() -> None:
        with gate.call():
            order.append("second runs")

    t1 = threading.Thread(target=holder)
    t1.start()
    assert inside.wait(10)
    t2 = threading.Thread(target=second)
    t2.start()
    t2.join(0.2)
    assert t2.is_alive()  # waiting at the gate
    release.set()
    t1.join(10)
    t2.join(10)
    assert order == ["first leaves", "second runs"]


def test_the_want_meter_counts_computing_and_not_sleeping() -> None:
    start = thread_want_ns()
    time.sleep(0.2)
    slept = thread_want_ns() - start
    start = thread_want_ns()
    deadline = time.thread_time() + 0.2
    while time.thread_time() < deadline:
        pass
    computed = thread_want_ns() - start
    assert computed >= 0.2e9
    assert slept < computed / 2


@pytest.mark.parametrize(("cpus", "workers", "target"), [(2, 2, 1), (8, 2, 4), (1, 4, 1), (6, 4, 1)])
def test_each_worker_process_keeps_its_share_of_the_cores_busy(cpus: int, workers: int, target: int) -> None:
    assert process_target(cpus, workers) == target


def test_a_call_that_must_not_wait_goes_in_at_once_and_counts() -> None:
    gate = CallGate(1, patience=30)
    with gate.call(), gate.call(wait=False):  # full, and still in: the event loop never blocks
        assert gate.running == 2
        others = threading.Thread(target=lambda: gate.call().__enter__())
        others.start()
        others.join(0.2)
        assert others.is_alive()  # a thread waits until the count falls below the limit
    others.join(10)
    assert not others.is_alive()
