"""The lease model: who blocks whom, expiry, and the words a stop or an abort uses."""

from __future__ import annotations

from typing import Any

from airflow_ais_etl.etl.leases import Holder, Lease, blocking, drop_lease, leases_of, prune, put_lease
from airflow_ais_etl.etl.origin import Origin

PROC = Holder("alice", "host1", 42, "1000")


def _task(run_id: str, task_id: str = "transform_bucket", map_index: str = "-1", tries: str = "1") -> Holder:
    return PROC.with_origin(Origin("dag_x", task_id, run_id, tries, map_index))


def test_a_holder_names_the_task_or_the_user() -> None:
    assert PROC.describe() == "user alice@host1 (pid 42)"
    assert _task("r1").describe() == "task transform_bucket of run r1 (dag dag_x)"
    assert _task("r1", "shard", "2", "3").describe() == "task shard[2] (try 3) of run r1 (dag dag_x)"
    assert PROC.with_origin(None) == PROC
    assert Holder.from_dict(_task("r1").to_dict()) == _task("r1")


def test_only_other_runs_and_other_processes_block() -> None:
    leases = [
        Lease(str(i), h, "offline transform", 0.0, 100.0)
        for i, h in enumerate(
            [_task("r1"), _task("r1", "other_task"), _task("r2"), PROC, Holder("bob", "host1", 43, "5")]
        )
    ]
    assert [lease.id for lease in blocking(leases, _task("r1", "stop_etl"))] == ["2", "3", "4"]
    assert [lease.id for lease in blocking(leases, PROC)] == ["0", "1", "2", "4"]


def test_expired_and_gone_leases_are_pruned() -> None:
    doc: dict[str, Any] = {}
    put_lease(doc, "e", Lease("old", PROC, "init", 0.0, 50.0))
    put_lease(doc, "e", Lease("live", _task("r1"), "offline transform", 0.0, 200.0))
    put_lease(doc, "f", Lease("dead", Holder("bob", "host1", 7, "1"), "inline transform", 0.0, 200.0))
    prune(doc, 100.0, gone=lambda h: h.user == "bob")
    assert [lease.id for lease in leases_of(doc, "e")] == ["live"]
    assert "f" not in doc
    assert (
        leases_of(doc, "e")[0].describe()
        == "offline transform by task transform_bucket of run r1 (dag dag_x)"
    )
    drop_lease(doc, "e", "live")
    assert doc == {}
