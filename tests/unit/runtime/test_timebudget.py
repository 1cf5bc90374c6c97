"""A batch's time budget leaves out the time its thread waited for a CPU, and only that."""

from __future__ import annotations

import gc
import os
import sys
import threading
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.runtime import timebudget
from airflow_ais_etl.runtime.timebudget import TimeBudget, cpu_wait

if TYPE_CHECKING:
    from tests.unit.runtime.conftest import FakeClocks


def test_a_wait_for_a_cpu_moves_the_deadline(clocks: FakeClocks) -> None:
    budget = TimeBudget(0.002)
    clocks.wall += 0.001
    assert not budget.spent()
    clocks.wall += 0.004  # 5 ms in, 4 of them waiting for a CPU: 1 ms of the budget used
    clocks.waited += 0.004
    assert not budget.spent()
    clocks.wall += 0.0009
    assert not budget.spent()
    clocks.wall += 0.0002  # 2.1 ms of own time
    assert budget.spent()


def test_time_not_spent_waiting_for_a_cpu_counts(clocks: FakeClocks) -> None:
    """A transform that sleeps or waits on the network is slow: its waits are no run-queue waits."""
    budget = TimeBudget(0.002)
    clocks.wall += 0.003
    assert budget.spent()


def test_a_wait_counted_once(clocks: FakeClocks) -> None:
    budget = TimeBudget(0.002)
    clocks.wall += 0.003
    clocks.waited += 0.002
    assert not budget.spent()  # deadline moved by 2 ms, to 4 ms
    assert not budget.spent()  # asked again: the same wait does not move it again
    clocks.wall += 0.0011
    assert budget.spent()


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="run-queue waits are read from Linux's /proc"
)
def test_cpu_wait_is_the_calling_thread_s_and_its_file_closes_with_it() -> None:
    with open("/proc/thread-self/schedstat") as f:
        own = int(f.read().split()[1]) / 1e9
    mine = cpu_wait()
    assert own <= mine < own + 0.5
    assert cpu_wait() >= mine
    seen: list[tuple[float, int]] = []  # each thread's wait and the descriptor of its schedstat

    def in_a_thread() -> None:
        seen.append((cpu_wait(), timebudget._per_thread.stat.fd))

    for _ in range(20):
        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
    gc.collect()
    assert len(seen) == 20
    assert min(wait for wait, _ in seen) >= 0.0
    assert all(fd >= 0 for _, fd in seen)
    # each thread's schedstat closed when it ended (a number may since name another file: counting
    # the process's descriptors instead failed when another thread opened one meanwhile)
    assert not [fd for _, fd in seen if "schedstat" in _target(fd)]


def _target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except FileNotFoundError:
        return ""
