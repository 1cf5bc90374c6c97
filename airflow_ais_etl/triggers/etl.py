"""The trigger that waits, in the triggerer, until every pod of an ETL is healthy."""

from __future__ import annotations

import asyncio
import time
import traceback
from enum import Enum
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_ais_etl.exceptions import AisEtlTriggerEventError
from airflow_ais_etl.hooks.ais_etl import AisEtlAsyncHook, AisEtlHook
from airflow_ais_etl.hooks.health import HealthVerdict

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["TRIGGER_EVENT_STATUSES", "AisEtlHealthTrigger", "TriggerStatus", "validate_trigger_event"]


class TriggerStatus(str, Enum):
    """How a health wait ended; the event carries the plain string value."""

    SUCCESS = "success"
    FAILED = "failed"
    """The ETL is missing or aborted."""
    TIMEOUT = "timeout"
    ERROR = "error"
    """The check itself raised."""

    def __str__(self) -> str:
        return self.value


TRIGGER_EVENT_STATUSES = frozenset(status.value for status in TriggerStatus)


def validate_trigger_event(event: Any) -> dict[str, Any]:
    """Return ``event`` if it is a dict with a known ``status``; raise :class:`AisEtlTriggerEventError`."""
    if event is None:
        raise AisEtlTriggerEventError(
            "the trigger returned no event (None): the task cannot tell what happened"
        )
    if not isinstance(event, dict):
        raise AisEtlTriggerEventError(f"malformed trigger event {event!r}: expected a dict", event=event)
    status = event.get("status")
    if status not in TRIGGER_EVENT_STATUSES:
        raise AisEtlTriggerEventError(
            f"trigger event has unknown status {status!r} (expected one of {sorted(TRIGGER_EVENT_STATUSES)}): "
            f"{event!r}",
            event=event,
        )
    return event


class AisEtlHealthTrigger(BaseTrigger):
    """Poll an ETL's health until all its pods serve, it fails, or ``end_time`` passes; emit ONE event.

    The event's ``status`` is ``success``, ``failed`` (missing or aborted ETL), ``timeout`` or
    ``error`` (the check itself raised; adds ``stack_trace``); it always carries ``etl_name`` and
    ``message``.

    :param etl_name: the ETL to watch
    :param ais_etl_conn_id: the ``ais_etl`` connection
    :param end_time: absolute deadline (epoch seconds), so a resumed trigger keeps the same deadline
    :param poll_interval: seconds between checks
    """

    def __init__(
        self,
        etl_name: str,
        *,
        end_time: float,
        ais_etl_conn_id: str = AisEtlHook.default_conn_name,
        poll_interval: float = 5.0,
    ) -> None:
        super().__init__()
        self.etl_name = etl_name
        self.ais_etl_conn_id = ais_etl_conn_id
        self.end_time = float(end_time)
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "etl_name": self.etl_name,
                "ais_etl_conn_id": self.ais_etl_conn_id,
                "end_time": self.end_time,
                "poll_interval": self.poll_interval,
            },
        )

    def _event(self, status: TriggerStatus, message: str, **extra: Any) -> TriggerEvent:
        payload = {"status": status.value, "etl_name": self.etl_name, "message": message, **extra}
        return TriggerEvent(payload)

    async def _wait(self) -> TriggerEvent:
        hook = AisEtlAsyncHook(self.ais_etl_conn_id)
        while True:
            report = await hook.check_health(self.etl_name)
            if report.status == HealthVerdict.HEALTHY:
                return self._event(TriggerStatus.SUCCESS, report.message)
            if report.status == HealthVerdict.FAILED:
                return self._event(TriggerStatus.FAILED, report.message)
            remaining = self.end_time - time.time()
            if remaining <= 0:
                return self._event(
                    TriggerStatus.TIMEOUT,
                    f"etl {self.etl_name} not healthy before the deadline: {report.message}",
                )
            self.log.info("%s; next check in %.1fs", report.message, min(self.poll_interval, remaining))
            await asyncio.sleep(min(self.poll_interval, remaining))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            event = await self._wait()
        except Exception as exc:
            event = self._event(
                TriggerStatus.ERROR,
                f"health check of etl {self.etl_name} failed: {type(exc).__name__}: {exc}",
                stack_trace=traceback.format_exc(),
            )
        yield event
