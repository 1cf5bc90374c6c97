"""A worker's hand-off threads are kept for the next request, run every call once, and end when idle."""

from __future__ import annotations

import threading
import time

from airflow_ais_etl.runtime.threadreuse import ReusedThreads
from tests.runtime.conftest import wait_for


def test_a_call_after_one_that_ended_runs_on_the_same_thread() -> None:
    threads = ReusedThreads("t-reuse")
    seen: list[int] = []
    done = threading.Event()

    def note() -> None:
        seen.append(threading.get_ident())
        done.set()

    threads.run(note)
    assert done.wait(5)
    assert wait_for(lambda: threads.idle == 1)
    before = threading.active_count()
    done.clear()
    threads.run(note)
    assert done.wait(5)
    assert seen[0] == seen[1]
    assert threading.active_count() == before


def test_calls_at_once_get_threads_of_their_own() -> None:
    threads = ReusedThreads("t-parallel")
    both_in = threading.Barrier(3, timeout=5)
    names: list[str] = []

    def meet() -> None:
        names.append(threading.current_thread().name)
        both_in.wait()

    threads.run(meet)
    threads.run(meet)
    both_in.wait()  # would time out (BrokenBarrierError) if the second call waited for the first
    assert names == ["t-parallel", "t-parallel"]
    assert wait_for(lambda: threads.idle == 2)


def test_an_idle_thread_ends_after_its_idle_time() -> None:
    threads = ReusedThreads("t-idle", idle_seconds=0.05)
    ran = threading.Event()
    threads.run(ran.set)
    assert ran.wait(5)
    assert wait_for(lambda: not any(t.name == "t-idle" for t in threading.enumerate()))
    assert threads.idle == 0


def test_every_call_runs_exactly_once_while_threads_come_and_go() -> None:
    """Calls handed over just as kept threads time out are neither lost nor run twice."""
    threads = ReusedThreads("t-race", idle_seconds=0.0005)
    counts = [0] * 3000
    lock = threading.Lock()

    def bump(i: int) -> None:
        with lock:
            counts[i] += 1

    for i in range(len(counts)):
        threads.run(bump, i)
        if i % 7 == 0:
            time.sleep(0.0005)  # let some threads reach their idle time
    assert wait_for(lambda: sum(counts) == len(counts))
    assert set(counts) == {1}
    assert wait_for(lambda: threads.idle == 0)
