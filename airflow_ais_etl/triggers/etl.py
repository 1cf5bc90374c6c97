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
from airflow_ais_etl.hooks.health import HealthReport, HealthVerdict, start_report
from airflow_ais_etl.triggers.startlease import StartLease

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

    With ``started_at`` it waits for the start of pods a deferrable init created instead: each poll
    is one step of the blocking init's wait (:func:`~airflow_ais_etl.hooks.health.start_report`),
    so a pod that will never be ready fails at once with the same diagnosis (its fields in the
    event's ``error``) after its pods were removed, and the ETL's own startup timeout applies.
    Meanwhile the trigger holds the init's lease on the ETL for the task ``origin``.

    :param etl_name: the ETL to watch
    :param ais_etl_conn_id: the ``ais_etl`` connection
    :param end_time: absolute deadline (epoch seconds), so a resumed trigger keeps the same deadline
    :param poll_interval: seconds between checks
    :param started_at: epoch seconds when an init created the pods (wait for their start)
    :param origin: the task the start's lease is held for (its ``dag_id``, ``run_id``, ...)
    """

    def __init__(
        self,
        etl_name: str,
        *,
        end_time: float,
        ais_etl_conn_id: str = AisEtlHook.default_conn_name,
        poll_interval: float = 5.0,
        started_at: float | None = None,
        origin: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.etl_name = etl_name
        self.ais_etl_conn_id = ais_etl_conn_id
        self.end_time = float(end_time)
        self.poll_interval = float(poll_interval)
        self.started_at = None if started_at is None else float(started_at)
        self.origin = dict(origin or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "etl_name": self.etl_name,
                "ais_etl_conn_id": self.ais_etl_conn_id,
                "end_time": self.end_time,
                "poll_interval": self.poll_interval,
                **(
                    {"started_at": self.started_at, "origin": self.origin}
                    if self.started_at is not None
                    else {}
                ),
            },
        )

    def _event(self, status: TriggerStatus, message: str, **extra: Any) -> TriggerEvent:
        payload = {"status": status.value, "etl_name": self.etl_name, "message": message, **extra}
        return TriggerEvent(payload)

    async def _check(self, hook: AisEtlAsyncHook, lease: StartLease | None) -> HealthReport:
        if self.started_at is None or lease is None:
            return await hook.check_health(self.etl_name)
        api = await hook.get_api()
        await asyncio.to_thread(lease.renew, api.backend)
        return await asyncio.to_thread(start_report, api, self.etl_name, time.time() - self.started_at)

    async def _wait(self, hook: AisEtlAsyncHook, lease: StartLease | None = None) -> TriggerEvent:
        while True:
            report = await self._check(hook, lease)
            if report.status == HealthVerdict.HEALTHY:
                return self._event(TriggerStatus.SUCCESS, report.message)
            if report.status == HealthVerdict.FAILED:
                return self._event(
                    TriggerStatus.FAILED, report.message, **({"error": report.error} if report.error else {})
                )
            remaining = self.end_time - time.time()
            if remaining <= 0:
                return self._event(
                    TriggerStatus.TIMEOUT,
                    f"etl {self.etl_name} not healthy before the deadline: {report.message}",
                )
            self.log.info("%s; next check in %.1fs", report.message, min(self.poll_interval, remaining))
            await asyncio.sleep(min(self.poll_interval, remaining))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = AisEtlAsyncHook(self.ais_etl_conn_id)
        lease = StartLease(self.etl_name, self.origin) if self.started_at is not None else None
        try:
            event = await self._wait(hook, lease)
        except Exception as exc:
            event = self._event(
                TriggerStatus.ERROR,
                f"health check of etl {self.etl_name} failed: {type(exc).__name__}: {exc}",
                stack_trace=traceback.format_exc(),
            )
        finally:  # also when cancelled (the task was cleared, or the triggerer moved it)
            if lease is not None:
                lease.release()
        yield event
