"""Deferrable init: the worker creates the pods, the triggerer waits for them (same diagnosis, same clean-up)."""

from __future__ import annotations

import asyncio
import importlib
import json
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_ais_etl.etl.errors import PodStartError
from airflow_ais_etl.hooks.ais_etl import AisEtlHook
from airflow_ais_etl.operators.etl import AisEtlInitCodeOperator, AisEtlInitSpecOperator
from airflow_ais_etl.service import INIT, AisEtl
from airflow_ais_etl.triggers.etl import AisEtlHealthTrigger

if TYPE_CHECKING:
    from pathlib import Path

# Readiness comes after a pause, so the first check on the worker finds the pods still starting.
SLOW_START = "import time\ntime.sleep(1.5)\n\ndef transform(data):\n    return data.upper()\n"
# The module fails at import, after a pause: the pod exits with code 3 before it is ever ready.
EXITS = "import sys, time\ntime.sleep(1.0)\nprint('bad config: no such table', flush=True)\nsys.exit(3)\n"


def _ctx(task_id: str = "init") -> dict[str, Any]:
    ti = mock.MagicMock(dag_id="dag-d", task_id=task_id, run_id="run-1", try_number=1, map_index=-1)
    return {"ti": ti, "run_id": "run-1"}


def _op(name: str, code: str, **kwargs: Any) -> AisEtlInitCodeOperator:
    return AisEtlInitCodeOperator(task_id="init", etl_name=name, code=code, deferrable=True, **kwargs)


def _deferred(op: AisEtlInitCodeOperator) -> AisEtlHealthTrigger:
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(_ctx())  # type: ignore[arg-type]
    assert deferred.value.method_name == "execute_complete"
    trigger = deferred.value.trigger
    assert isinstance(trigger, AisEtlHealthTrigger)
    return trigger


def _rebuilt(trigger: AisEtlHealthTrigger) -> AisEtlHealthTrigger:
    """Round-trip through the serialised form, as the triggerer receives it."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)
    assert isinstance(rebuilt, AisEtlHealthTrigger)
    return rebuilt


async def _event(trigger: AisEtlHealthTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger yielded no event")


def test_default_is_airflows_default_deferrable() -> None:
    op = AisEtlInitSpecOperator(task_id="t", etl_name="spec-etl", spec="x.yaml")
    assert op.deferrable is False


@pytest.mark.integration
def test_deferred_start_succeeds_in_the_trigger_which_holds_the_init_lease(
    ais_home: Path, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"hello")
    api = AisEtl.local(str(ais_home))
    op = _op("slow-start", SLOW_START, timeout="30s")
    trigger = _rebuilt(_deferred(op))
    assert trigger.started_at is not None
    assert trigger.origin == {
        "dag_id": "dag-d",
        "task_id": "init",
        "run_id": "run-1",
        "try_number": "1",
        "map_index": "-1",
    }
    assert api.leases("slow-start") == []  # the worker's lease ended with its execute()

    async def wait_and_watch() -> tuple[dict[str, Any], list[str]]:
        task = asyncio.create_task(_event(trigger))
        seen: list[str] = []
        while not task.done() and not seen:
            seen = [lease.describe() for lease in await asyncio.to_thread(api.leases, "slow-start")]
            await asyncio.sleep(0.05)
        return await task, seen

    event, seen = asyncio.run(wait_and_watch())
    assert event["status"] == "success", event
    assert seen == [f"{INIT} by task init of run run-1 (dag dag-d)"]
    assert api.leases("slow-start") == []  # dropped when the trigger fired
    info = op.execute_complete(_ctx(), event)  # type: ignore[arg-type]
    assert (info["name"], info["state"], info["pods"]) == ("slow-start", "running", 2)
    assert api.transform_object("slow-start", f"file://{tmp_path / 'src'}", "a.txt") == b"HELLO"


@pytest.mark.integration
def test_a_pod_that_exits_fails_with_the_blocking_diagnosis_and_no_pods(ais_home: Path) -> None:
    api = AisEtl.local(str(ais_home))
    with pytest.raises(PodStartError) as blocking:
        api.init_code("exits-blocking", EXITS)
    trigger = _rebuilt(_deferred(_op("exits-deferred", EXITS)))
    event = asyncio.run(_event(trigger))
    assert event["status"] == "failed"
    assert api.backend.endpoints("exits-deferred") == []  # removed by the trigger, before the task resumes
    assert api.leases("exits-deferred") == []
    with pytest.raises(PodStartError) as deferred:
        _op("exits-deferred", EXITS).execute_complete(_ctx(), event)  # type: ignore[arg-type]
    for error in (blocking.value, deferred.value):
        assert error.exit_code == 3
        assert "bad config: no such table" in error.log_tail
        assert error.target in ("t1", "t2")
        assert error.pod_name
        assert "exited with code 3 before becoming ready" in str(error)
    assert deferred.value.etl_name == "exits-deferred"
    assert api.backend.running_names() == []


def test_execute_complete_after_a_timeout_or_crashed_check_stops_the_start() -> None:
    op = _op("my-etl", SLOW_START)
    hook = mock.MagicMock(spec=AisEtlHook)
    hook.api = mock.create_autospec(AisEtl, instance=True)
    op.__dict__["hook"] = hook
    for event in (
        {"status": "timeout", "etl_name": "my-etl", "message": "etl my-etl not healthy before the deadline"},
        {
            "status": "error",
            "etl_name": "my-etl",
            "message": "health check failed: OSError",
            "stack_trace": "T",
        },
    ):
        hook.api.stop.reset_mock()
        with pytest.raises(PodStartError, match=event["message"]):
            op.execute_complete(_ctx(), event)  # type: ignore[arg-type]
        hook.api.stop.assert_called_once_with("my-etl")


@pytest.mark.integration  # importing an example DAG file makes Airflow start a process
def test_the_offline_example_defers_its_init() -> None:
    from tests.dag_runs import example_dag

    assert example_dag("example_ais_etl_offline").get_task("init_etl").deferrable is True
