from __future__ import annotations

from unittest import mock

from airflow_ais_etl.links.jobfeed import JOB_KEY, MAX_ERRORS, JobFeed, publishable


def _snap(state: str = "running", errors: int = 0) -> dict:
    errs = [{"object": f"o{i}", "target": "t1", "error": "boom"} for i in range(errors)]
    return {"state": state, "objects": 1, "error_count": errors, "errors": errs}


def test_every_snapshot_is_published_and_the_log_gets_one_per_interval() -> None:
    ti = mock.MagicMock()
    lines: list[dict] = []
    feed = JobFeed({"ti": ti}, "etl-a", "conn", log_every=3600, log_line=lines.append)
    feed(_snap())
    feed(_snap())
    feed(_snap("done"))
    assert ti.xcom_push.call_count == 3
    assert [s["state"] for s in lines] == ["done"]  # the interval never passed; the last one is logged
    published = ti.xcom_push.call_args.kwargs
    assert published["key"] == JOB_KEY
    assert published["value"]["etl"] == "etl-a"
    assert published["value"]["conn_id"] == "conn"


def test_published_errors_are_bounded_but_counted() -> None:
    snap = publishable(_snap(errors=MAX_ERRORS + 7), "e", "c")
    assert len(snap["errors"]) == MAX_ERRORS
    assert snap["errors"][-1]["object"] == f"o{MAX_ERRORS + 6}"
    assert snap["error_count"] == MAX_ERRORS + 7


def test_a_failing_xcom_never_fails_the_job() -> None:
    ti = mock.MagicMock()
    ti.xcom_push.side_effect = RuntimeError("no comms")
    lines: list[dict] = []
    feed = JobFeed({"ti": ti}, "e", "c", log_every=0, log_line=lines.append)
    feed(_snap())
    feed(_snap())
    assert ti.xcom_push.call_count == 1  # gave up after the first failure
    assert len(lines) == 2
