"""The job registry of an ETL: its running and recent bucket jobs, whoever started them.

Every offline job (from the CLI, the Python API or an Airflow task) records itself in the backend
state of each ETL it uses, so the ETL view lists jobs started outside Airflow too. One ETL's
registry is a JSON document ``{job id: record}``, bounded to the :data:`JOB_HISTORY` newest
records; a record is a progress snapshot (bounded: :data:`MAX_JOB_ERRORS` failing objects) plus
who runs it (the lease holder) and when it was last updated. Pure: storing is the backend's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_ais_etl.etl.leases import LEASE_TTL, Holder

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "INTERRUPTED",
    "JOB_HISTORY",
    "MAX_JOB_ERRORS",
    "RUNNING",
    "job_record",
    "jobs_newest_first",
    "put_job",
]

JOB_HISTORY = 20
"""Records kept per ETL (the newest by last update)."""
MAX_JOB_ERRORS = 10
"""Failing objects kept per record (the newest; ``error_count`` keeps the total)."""
RUNNING, INTERRUPTED = "running", "interrupted"
_SNAPSHOT_KEYS = (
    "src",
    "dst",
    "dry_run",
    "state",
    "cause",
    "planned_objects",
    "planned_bytes",
    "objects",
    "bytes_in",
    "bytes_out",
    "skipped",
    "error_count",
    "targets",
    "elapsed",
    "rate_objects",
    "rate_bytes",
    "eta",
)


def job_record(
    job_id: str,
    label: str,
    holder: Holder,
    snapshot: Mapping[str, Any],
    *,
    started: float,
    now: float,
    every: float,
) -> dict[str, Any]:
    """Return the record of job ``job_id`` on ETL(s) ``label`` from one progress snapshot.

    ``every`` is how often a running job updates it: a record older than that (plus a lease's
    lifetime) belongs to a job that died without saying so.
    """
    record = {k: snapshot[k] for k in _SNAPSHOT_KEYS if k in snapshot}
    record["errors"] = list(snapshot.get("errors") or [])[-MAX_JOB_ERRORS:]
    record.setdefault("state", RUNNING)
    record.update(
        id=job_id,
        etl=label,
        holder=holder.to_dict(),
        holder_text=holder.describe(),
        started=started,
        updated=now,
        every=every,
    )
    return record


def put_job(doc: dict[str, Any], record: Mapping[str, Any], keep: int = JOB_HISTORY) -> None:
    """Store ``record`` in one ETL's registry ``doc`` (in place), keeping the ``keep`` newest."""
    doc[str(record["id"])] = dict(record)
    for old in sorted(doc, key=lambda k: _updated(doc[k]), reverse=True)[keep:]:
        del doc[old]


def _updated(record: Any) -> float:
    try:
        return float(record.get("updated") or 0)
    except (AttributeError, TypeError, ValueError):
        return 0.0


def jobs_newest_first(
    doc: Mapping[str, Any], now: float, holder_gone: Callable[[Holder], bool] = lambda _h: False
) -> list[dict[str, Any]]:
    """Return the records of one ETL's registry, newest first.

    A running record whose holder is gone, or that was not updated for a lease's lifetime beyond
    its interval, reads as ``interrupted`` (killed, or its machine lost).
    """
    out = []
    for record in doc.values():
        if not isinstance(record, dict):
            continue
        record = dict(record)
        if record.get("state") == RUNNING:
            stale = now - _updated(record) > LEASE_TTL + float(record.get("every") or 0)
            if stale or holder_gone(Holder.from_dict(record.get("holder"))):
                record["state"] = INTERRUPTED
        out.append(record)
    return sorted(out, key=_updated, reverse=True)
