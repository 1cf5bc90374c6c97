"""The abort cause is the event that happened first: an object failure caused by a cluster event
reports the event (stamped by the local backend; named by the watch elsewhere)."""

from __future__ import annotations

from airflow_ais_etl.cluster.base import MembershipWatch
from airflow_ais_etl.cluster.local.events import Event, earliest, membership_events
from airflow_ais_etl.dataplane.firstcause import EVENT_SLACK, WatchCauses, cause_before, pod_vanished
from airflow_ais_etl.etl.errors import TransformError


class _Watch(MembershipWatch):
    def __init__(self, event: tuple[float, str] | None) -> None:
        self.event = event

    def close(self) -> None:
        pass

    def earliest_event(self) -> tuple[float, str] | None:
        return self.event


def _vanished() -> TransformError:
    err = TransformError("cannot reach pod")
    err.__cause__ = ConnectionRefusedError(111, "refused")
    return err


def _timed_out() -> TransformError:
    err = TransformError("timed out")
    err.__cause__ = TimeoutError()
    return err


def test_a_stamped_event_before_the_failure_is_reported() -> None:
    assert (
        cause_before(_vanished(), 100.0, _Watch((99.0, "target t2 left")), WatchCauses()) == "target t2 left"
    )
    # a pod's exit is recorded just after the connection it served dropped
    late = 100.0 + EVENT_SLACK / 2
    assert cause_before(_vanished(), 100.0, _Watch((late, "pod of t1 exited with code -9")), WatchCauses())


def test_an_event_long_after_the_failure_is_not_its_cause() -> None:
    assert cause_before(_vanished(), 100.0, _Watch((105.0, "etl x stopped")), WatchCauses()) is None


def test_unstamped_watches_name_the_cause_of_a_vanished_pod() -> None:
    seen = WatchCauses()
    seen.seen("pod of node-a exited with code 137")
    seen.seen("etl x stopped")  # only the first counts
    assert cause_before(_vanished(), 100.0, _Watch(None), seen) == "pod of node-a exited with code 137"


def test_timeouts_and_answers_are_the_objects_own_failures() -> None:
    seen = WatchCauses()
    seen.seen("etl x stopped")
    assert not pod_vanished(_timed_out())
    assert not pod_vanished(TransformError("pod answered 500", status=500))
    assert cause_before(_timed_out(), 100.0, _Watch(None), seen) is None


def test_local_events_order_by_time_and_membership_diffs_name_every_change() -> None:
    events = [
        Event(3.0, "pod of t1 exited with code -9"),
        Event(1.0, "target t2 left"),
        Event(2.0, "etl x stopped"),
    ]
    assert earliest(events) == Event(1.0, "target t2 left")
    assert earliest([]) is None
    diff = membership_events({"targets": ["t1", "t2"]}, {"targets": ["t1", "t3"]}, 7.0)
    assert diff == [Event(7.0, "target t2 left, target t3 joined")]
    assert membership_events({"targets": ["t1"]}, {"targets": ["t1"]}, 7.0) == []
