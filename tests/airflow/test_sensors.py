from __future__ import annotations

import time
from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowSensorTimeout, TaskDeferred

from airflow_ais_etl.exceptions import AisEtlHealthCheckFailed, AisEtlTriggerEventError
from airflow_ais_etl.hooks.health import HealthReport, HealthVerdict
from airflow_ais_etl.sensors.etl import AisEtlHealthSensor
from airflow_ais_etl.triggers.etl import AisEtlHealthTrigger

CHECK = "airflow_ais_etl.hooks.ais_etl.AisEtlHook.check_health"


def _sensor(**kwargs: object) -> AisEtlHealthSensor:
    args = {"task_id": "wait", "etl_name": "my-etl", "poke_interval": 2, "timeout": 30, **kwargs}
    return AisEtlHealthSensor(**args)  # type: ignore[arg-type]


def test_template_fields() -> None:
    assert set(AisEtlHealthSensor.template_fields) == {"etl_name", "ais_etl_conn_id"}


def test_poke_reports_health() -> None:
    sensor = _sensor()
    with mock.patch(CHECK, return_value=HealthReport(HealthVerdict.HEALTHY, "ok")):
        assert sensor.poke({}) is True  # type: ignore[arg-type]
    with mock.patch(CHECK, return_value=HealthReport(HealthVerdict.WAITING, "1 of 2 not ready")):
        assert sensor.poke({}) is False  # type: ignore[arg-type]
    with (
        mock.patch(CHECK, return_value=HealthReport(HealthVerdict.FAILED, "etl my-etl does not exist")),
        pytest.raises(AisEtlHealthCheckFailed, match="does not exist"),
    ):
        sensor.poke({})  # type: ignore[arg-type]


def test_deferrable_checks_once_then_defers() -> None:
    sensor = _sensor(deferrable=True, ais_etl_conn_id="c1")
    before = time.time()
    with (
        mock.patch(CHECK, return_value=HealthReport(HealthVerdict.WAITING, "stopped")) as check,
        pytest.raises(TaskDeferred) as deferred,
    ):
        sensor.execute({})  # type: ignore[arg-type]
    check.assert_called_once_with("my-etl")
    trigger = deferred.value.trigger
    assert isinstance(trigger, AisEtlHealthTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout is not None
    assert deferred.value.timeout.total_seconds() == 30
    assert trigger.etl_name == "my-etl"
    assert trigger.ais_etl_conn_id == "c1"
    assert trigger.poll_interval == 2
    assert before + 30 <= trigger.end_time <= time.time() + 30


def test_deferrable_returns_without_deferring_when_already_healthy() -> None:
    sensor = _sensor(deferrable=True)
    with mock.patch(CHECK, return_value=HealthReport(HealthVerdict.HEALTHY, "ok")):
        assert sensor.execute({}) is None  # type: ignore[arg-type]


def test_execute_complete_success() -> None:
    assert (
        _sensor().execute_complete({}, {"status": "success", "etl_name": "my-etl", "message": "ok"}) is None
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "error", "match"),
    [
        (
            {"status": "failed", "etl_name": "my-etl", "message": "etl my-etl does not exist"},
            AisEtlHealthCheckFailed,
            "does not exist",
        ),
        (
            {"status": "error", "etl_name": "my-etl", "message": "boom", "stack_trace": "Traceback"},
            AisEtlHealthCheckFailed,
            "boom",
        ),
        (
            {"status": "timeout", "etl_name": "my-etl", "message": "not healthy"},
            AirflowSensorTimeout,
            "not healthy",
        ),
        (None, AisEtlTriggerEventError, "None"),
        ({"status": "running", "message": "?"}, AisEtlTriggerEventError, "unknown status"),
        ({"message": "no status"}, AisEtlTriggerEventError, "unknown status"),
        ("success", AisEtlTriggerEventError, "malformed"),
    ],
)
def test_execute_complete_raises_for_everything_but_success(
    event: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        _sensor().execute_complete({}, event)  # type: ignore[arg-type]


def test_failed_event_error_keeps_status() -> None:
    with pytest.raises(AisEtlHealthCheckFailed) as info:
        _sensor().execute_complete({}, {"status": "error", "etl_name": "my-etl", "message": "boom"})  # type: ignore[arg-type]
    assert info.value.status == "error"
    assert info.value.etl_name == "my-etl"
