"""The job registry document: bounded history and errors, newest first, dead holders' jobs interrupted."""

from __future__ import annotations

from typing import Any

from airflow_ais_etl.etl.jobs import JOB_HISTORY, MAX_JOB_ERRORS, job_record, jobs_newest_first, put_job
from airflow_ais_etl.etl.leases import LEASE_TTL, Holder

CLI = Holder("u", "h", 42, "s")
TASK = Holder("u", "h", 43, "s", "dag", "run", "transform", "2", "1")


def _snap(state: str = "running", **extra: Any) -> dict[str, Any]:
    return {
        "state": state,
        "src": "file:///a",
        "dst": "file:///b",
        "objects": 3,
        "planned_objects": 9,
        **extra,
    }


def test_a_record_names_its_holder_and_keeps_the_newest_errors() -> None:
    errors = [{"object": f"o{i}", "target": "t1", "error": "x"} for i in range(MAX_JOB_ERRORS + 5)]
    rec = job_record(
        "j1", "a>>b", TASK, _snap(errors=errors, error_count=15), started=1.0, now=2.0, every=2.0
    )
    assert rec["holder_text"] == "task transform[2] of run run (dag dag)"
    assert rec["holder"]["dag_id"] == "dag"
    assert (rec["id"], rec["etl"], rec["objects"], rec["error_count"]) == ("j1", "a>>b", 3, 15)
    assert rec["errors"] == errors[-MAX_JOB_ERRORS:]


def test_the_registry_keeps_the_newest_records() -> None:
    doc: dict[str, Any] = {}
    for i in range(JOB_HISTORY + 3):
        put_job(doc, job_record(f"j{i}", "e", CLI, _snap("done"), started=i, now=float(i), every=2.0))
    put_job(doc, job_record("j0", "e", CLI, _snap("done"), started=0, now=100.0, every=2.0))  # updated again
    listed = jobs_newest_first(doc, now=101.0)
    assert len(listed) == JOB_HISTORY
    assert [r["id"] for r in listed[:2]] == ["j0", f"j{JOB_HISTORY + 2}"]


def test_a_running_job_whose_holder_died_or_went_silent_reads_interrupted() -> None:
    doc: dict[str, Any] = {}
    put_job(doc, job_record("alive", "e", CLI, _snap(), started=0, now=100.0, every=2.0))
    put_job(doc, job_record("silent", "e", TASK, _snap(), started=0, now=100.0 - LEASE_TTL - 5, every=2.0))
    put_job(
        doc,
        job_record(
            "ended", "e", CLI, _snap("aborted", cause="target t2 left"), started=0, now=1.0, every=2.0
        ),
    )
    states = {r["id"]: r["state"] for r in jobs_newest_first(doc, now=100.0)}
    assert states == {"alive": "running", "silent": "interrupted", "ended": "aborted"}
    gone = {r["id"]: r["state"] for r in jobs_newest_first(doc, now=100.0, holder_gone=lambda h: h.pid == 42)}
    assert gone["alive"] == "interrupted"
