"""The jobs the ETL view shows: every ETL's job registry, and what one task recorded in XCom.

The ETL list reads each ETL's job registry in the backend state
(:mod:`~airflow_ais_etl.cluster.jobrecorder`): every bucket job is there, from the CLI, the Python
API or a task, each naming its holder. The task tab reads the task's own XCom (see
:mod:`airflow_ais_etl.links.jobfeed`), published every second by the task's worker, through the
metadata DB the api-server has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.jobrecorder import recent_jobs
from airflow_ais_etl.links.etl import TASK_KEY, airflow_task_tab_url, task_view_url
from airflow_ais_etl.links.jobfeed import JOB_KEY

if TYPE_CHECKING:
    from collections.abc import Collection

    from sqlalchemy.orm import Session

    from airflow_ais_etl.cluster.base import Backend

__all__ = ["job_records", "registry_jobs", "task_record"]

SHOWN_FINISHED = 10
"""Finished jobs listed per ETL (running ones are all listed)."""

LIVE_TASK_STATES = frozenset(
    {"running", "deferred", "queued", "scheduled", "up_for_reschedule", "restarting"}
)


def _value(row: Any) -> Any:
    from airflow.models.xcom import XComModel

    return XComModel.deserialize_value(row)


def _ti_state(session: Session, dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    from airflow.models.taskinstance import TaskInstance
    from sqlalchemy import select

    state = session.scalar(
        select(TaskInstance.state).where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.task_id == task_id,
            TaskInstance.map_index == map_index,
        )
    )
    return str(getattr(state, "value", state) or "")


def _job(row: Any, session: Session) -> dict[str, Any] | None:
    value = _value(row)
    if not isinstance(value, dict):
        return None
    ti_state = _ti_state(session, row.dag_id, row.run_id, row.task_id, row.map_index)
    state = str(value.get("state") or "")
    if state == "running" and ti_state not in LIVE_TASK_STATES:
        state = "interrupted"  # the task ended (killed, lost) without a final snapshot
    return {
        **value,
        "state": state,
        "dag_id": row.dag_id,
        "run_id": row.run_id,
        "task_id": row.task_id,
        "map_index": row.map_index,
        "task_state": ti_state,
        "view": task_view_url(row.dag_id, row.run_id, row.task_id, row.map_index),
        "airflow_view": airflow_task_tab_url(row.dag_id, row.run_id, row.task_id, row.map_index),
    }


def job_records(session: Session, dag_ids: Collection[str], limit: int = 100) -> list[dict[str, Any]]:
    """Return the newest job snapshots of the DAGs ``dag_ids`` (the user may read them), newest first."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    if not dag_ids:
        return []
    rows = session.execute(
        select(XComModel)
        .where(XComModel.key == JOB_KEY, XComModel.dag_id.in_(list(dag_ids)))
        .order_by(XComModel.timestamp.desc())
        .limit(limit)
    ).scalars()
    return [job for row in rows if (job := _job(row, session)) is not None]


def task_record(session: Session, dag_id: str, run_id: str, task_id: str, map_index: int) -> dict[str, Any]:
    """Return what one task instance recorded: ``{"task": {etl, conn_id, dashboard} | None, "job": ... | None}``."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    rows = session.execute(
        select(XComModel).where(
            XComModel.key.in_([TASK_KEY, JOB_KEY]),
            XComModel.dag_id == dag_id,
            XComModel.run_id == run_id,
            XComModel.task_id == task_id,
            XComModel.map_index == map_index,
        )
    ).scalars()
    out: dict[str, Any] = {"task": None, "job": None}
    for row in rows:
        if row.key == TASK_KEY:
            value = _value(row)
            out["task"] = value if isinstance(value, dict) else None
        else:
            out["job"] = _job(row, session)
    out["task_state"] = _ti_state(session, dag_id, run_id, task_id, map_index)
    return out


def _task_of(record: dict[str, Any]) -> dict[str, Any]:
    """Return the task fields and links of a record whose holder is an Airflow task (else none)."""
    holder = record.get("holder") or {}
    if not holder.get("run_id"):
        return {}
    index = str(holder.get("map_index") or "-1")
    map_index = int(index) if index.lstrip("-").isdigit() else -1
    dag_id, run_id, task_id = str(holder["dag_id"]), str(holder["run_id"]), str(holder.get("task_id"))
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "map_index": map_index,
        "view": task_view_url(dag_id, run_id, task_id, map_index),
        "airflow_view": airflow_task_tab_url(dag_id, run_id, task_id, map_index),
    }


def registry_jobs(
    backend: Backend, name: str, readable_dags: Collection[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return the jobs of ETL ``name`` to list (running, then the newest finished) and its aborts.

    Jobs of tasks of DAGs the user may not read are left out; jobs started outside Airflow are shown
    with their holder (``user u@h (pid N)``).
    """
    shown = []
    for record in recent_jobs(backend, name):
        task = _task_of(record)
        if task and task["dag_id"] not in readable_dags:
            continue
        shown.append({**record, **task, "holder": record.get("holder_text", "")})
    listed = [r for r in shown if r["state"] == "running"]
    listed += [r for r in shown if r["state"] != "running"][:SHOWN_FINISHED]
    aborts = [
        {
            k: r.get(k)
            for k in (
                "cause",
                "holder",
                "dag_id",
                "run_id",
                "task_id",
                "map_index",
                "updated",
                "view",
                "airflow_view",
            )
        }
        for r in shown
        if r["state"] == "aborted"
    ]
    return listed, aborts
