from __future__ import annotations

import importlib
import json
import time
from typing import TYPE_CHECKING
from unittest import mock

import pytest

from airflow_ais_etl.hooks.health import HealthReport, HealthVerdict
from airflow_ais_etl.triggers.etl import AisEtlHealthTrigger

if TYPE_CHECKING:
    from pathlib import Path

CHECK = "airflow_ais_etl.hooks.ais_etl.AisEtlAsyncHook.check_health"


def _trigger(**kwargs: object) -> AisEtlHealthTrigger:
    args = {"etl_name": "my-etl", "end_time": time.time() + 60, "poll_interval": 0.01, **kwargs}
    return AisEtlHealthTrigger(**args)  # type: ignore[arg-type]


def test_serialize_round_trip() -> None:
    trigger = _trigger(ais_etl_conn_id="other")
    classpath, kwargs = trigger.serialize()
    json.dumps(kwargs)
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs == {
        "etl_name": "my-etl",
        "ais_etl_conn_id": "other",
        "end_time": trigger.end_time,
        "poll_interval": 0.01,
    }


async def _first_event(trigger: AisEtlHealthTrigger) -> dict:
    gen = trigger.run()
    event = await gen.asend(None)
    with pytest.raises(StopAsyncIteration):
        await gen.asend(None)
    return event.payload


@pytest.mark.asyncio
async def test_success_after_waiting() -> None:
    reports = [
        HealthReport(HealthVerdict.WAITING, "1 of 2 not ready"),
        HealthReport(HealthVerdict.HEALTHY, "all 2 pod(s) are healthy"),
    ]
    with mock.patch(CHECK, side_effect=reports) as check:
        event = await _first_event(_trigger())
    assert event == {"status": "success", "etl_name": "my-etl", "message": "all 2 pod(s) are healthy"}
    assert check.call_count == 2


@pytest.mark.asyncio
async def test_failed_when_aborted() -> None:
    with mock.patch(
        CHECK, return_value=HealthReport(HealthVerdict.FAILED, "etl my-etl was aborted: target t2 left")
    ):
        event = await _first_event(_trigger())
    assert event["status"] == "failed"
    assert "target t2 left" in event["message"]


@pytest.mark.asyncio
async def test_missing_etl_is_a_clear_failed_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIS_ETL_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CONN_AIS_ETL_DEFAULT", raising=False)
    event = await _first_event(_trigger(etl_name="never-created"))
    assert event["status"] == "failed"
    assert event["etl_name"] == "never-created"
    assert "never-created does not exist" in event["message"]


@pytest.mark.asyncio
async def test_timeout_at_the_absolute_deadline() -> None:
    with mock.patch(CHECK, return_value=HealthReport(HealthVerdict.WAITING, "etl my-etl is stopped")):
        event = await _first_event(_trigger(end_time=time.time() + 0.05))
    assert event["status"] == "timeout"
    assert "etl my-etl is stopped" in event["message"]


@pytest.mark.asyncio
async def test_error_carries_the_stack_trace() -> None:
    with mock.patch(CHECK, side_effect=OSError("disk on fire")):
        event = await _first_event(_trigger())
    assert event["status"] == "error"
    assert "OSError: disk on fire" in event["message"]
    assert "Traceback" in event["stack_trace"]
