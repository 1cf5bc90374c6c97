"""``quiet_collector``: a job runs with the cycle collector quiet, and leaves it as it found it."""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.gcquiet import YOUNG_THRESHOLD, quiet_collector

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def _collector_as_python_starts() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_a_job_freezes_what_was_there_raises_the_young_threshold_and_restores_both() -> None:
    before: list[int] = []  # a container: the collector tracks it
    with quiet_collector():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
        assert not any(o is before for o in gc.get_objects())  # frozen: no collection walks it
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == (700, 10, 10)
    assert any(o is before for o in gc.get_objects())


def test_cycles_made_during_a_job_are_still_collected() -> None:
    class Node:
        pass

    with quiet_collector():
        node = Node()
        node.self = node  # type: ignore[attr-defined]
        del node
        assert gc.collect() >= 1


def test_overlapping_jobs_restore_only_when_the_last_one_ends() -> None:
    inner_started, outer_may_end = threading.Event(), threading.Event()

    def second_job() -> None:
        with quiet_collector():
            inner_started.set()
            outer_may_end.wait(10)

    with quiet_collector():
        thread = threading.Thread(target=second_job)
        thread.start()
        assert inner_started.wait(10)
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD  # the second job still runs
    outer_may_end.set()
    thread.join(10)
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_a_freeze_made_before_the_job_is_left_alone() -> None:
    """An Airflow worker may have frozen its objects before forking: the job must not thaw them."""
    kept: list[int] = []
    gc.freeze()
    with quiet_collector():
        pass
    assert gc.get_freeze_count() > 0  # (the count falls as frozen objects are freed; thawed, it is 0)
    assert not any(o is kept for o in gc.get_objects())


def test_a_higher_threshold_set_by_the_application_is_kept() -> None:
    gc.set_threshold(50_000, 20, 20)
    with quiet_collector():
        assert gc.get_threshold() == (50_000, 20, 20)
    assert gc.get_threshold() == (50_000, 20, 20)


def test_a_failing_job_restores_the_collector() -> None:
    with pytest.raises(RuntimeError), quiet_collector():
        raise RuntimeError("the job failed")
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
