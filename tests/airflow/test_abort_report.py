from __future__ import annotations

from airflow_ais_etl.etl.errors import AbortError
from airflow_ais_etl.operators.abort_report import abort_paragraph, clear_abort_error, failing_target

STATS = {"objects": 7, "planned_objects": 20, "skipped": 2, "error_count": 1}


def test_failing_target_is_the_one_the_cause_names() -> None:
    assert failing_target("pod of t1 exited with code -9", ["t1", "t12"]) == "t1"
    assert failing_target("pod of t12 exited with code 1", ["t1", "t12"]) == "t12"
    assert failing_target("target t2 left", ["t1"]) == "t2"  # gone from the membership already
    assert failing_target("etl e stopped", ["t1", "t2"]) is None


def test_the_paragraph_says_what_happened_what_was_done_and_how_to_resume() -> None:
    retrying = abort_paragraph("e1", "target t2 left", STATS, try_number=1, max_tries=3)
    assert retrying.startswith("The offline job of ETL e1 was aborted: target t2 left. ")
    assert "7 of 20 object(s) were transformed (2 skipped, 1 failed)" in retrying
    assert "no partial object" in retrying
    assert "This was try 1 of 3: the retry restarts the ETL" in retrying
    last = abort_paragraph("e1", "target t2 left", STATS, try_number=3, max_tries=3)
    assert "To resume, clear this task" in last
    assert "\n" not in last


def test_the_error_keeps_cause_and_stats_and_carries_the_log_tail() -> None:
    original = AbortError("etl job aborted: pod of t1 exited", cause="pod of t1 exited", etl_name="e1")
    original.stats = dict(STATS)  # type: ignore[attr-defined]
    err = clear_abort_error(original, "e1", "Paragraph.", "line 1\nTraceback: boom", "t1")
    assert err.cause == "pod of t1 exited"
    assert err.stats == STATS  # type: ignore[attr-defined]
    assert str(err).endswith("Paragraph.\nLast lines of the log of target t1's pod:\nline 1\nTraceback: boom")
    assert "not available" in str(clear_abort_error(original, "e1", "Paragraph.", "", "t1"))
    assert str(clear_abort_error(original, "e1", "Paragraph.", "", None)).endswith("Paragraph.")
