"""The sensor that waits until every transformation pod of an ETL is healthy."""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSensorTimeout

from airflow_ais_etl.exceptions import AisEtlHealthCheckFailed
from airflow_ais_etl.hooks.ais_etl import AisEtlHook
from airflow_ais_etl.hooks.health import HealthVerdict
from airflow_ais_etl.links.etl import AisEtlLink
from airflow_ais_etl.triggers.etl import AisEtlHealthTrigger, TriggerStatus, validate_trigger_event
from airflow_ais_etl.version_compat import BaseSensorOperator, conf

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

__all__ = ["AisEtlHealthSensor"]


class AisEtlHealthSensor(BaseSensorOperator):
    """Wait until all pods of an ETL serve (one pod per target).

    A missing or aborted ETL fails at once instead of waiting for the timeout. With
    ``deferrable=True`` the sensor checks once on the worker and then hands the wait to
    :class:`~airflow_ais_etl.triggers.etl.AisEtlHealthTrigger`.

    :param etl_name: the ETL to watch (templated)
    :param ais_etl_conn_id: the ``ais_etl`` connection (templated)
    :param deferrable: defer to the triggerer (default: ``[operators] default_deferrable``)
    """

    template_fields: Sequence[str] = ("etl_name", "ais_etl_conn_id")
    operator_extra_links = (AisEtlLink(),)

    def __init__(
        self,
        *,
        etl_name: str,
        ais_etl_conn_id: str = AisEtlHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.etl_name = etl_name
        self.ais_etl_conn_id = ais_etl_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> AisEtlHook:
        return AisEtlHook(self.ais_etl_conn_id)

    def poke(self, context: Context) -> bool:
        report = self.hook.check_health(self.etl_name)
        if report.status == HealthVerdict.FAILED:
            raise AisEtlHealthCheckFailed(report.message, status="poke", etl_name=self.etl_name)
        self.log.info("%s", report.message)
        return report.healthy

    def execute(self, context: Context) -> Any:
        AisEtlLink.persist(context, self.etl_name, str(self.ais_etl_conn_id))
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        self.defer(
            trigger=AisEtlHealthTrigger(
                etl_name=self.etl_name,
                ais_etl_conn_id=self.ais_etl_conn_id,
                end_time=time.time() + float(self.timeout),
                poll_interval=float(self.poke_interval),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout)),
        )
        return None  # unreachable: defer() raises TaskDeferred

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        """Finish after the trigger fired: only ``success`` returns, every other status raises."""
        event = validate_trigger_event(event)
        status, message = event["status"], event.get("message", "")
        if status == TriggerStatus.SUCCESS:
            self.log.info("%s", message)
            return
        if status == TriggerStatus.TIMEOUT:
            raise AirflowSensorTimeout(f"sensor timed out: {message}")
        if event.get("stack_trace"):
            self.log.error("trigger stack trace:\n%s", event["stack_trace"])
        raise AisEtlHealthCheckFailed(message, status=status, etl_name=event.get("etl_name") or self.etl_name)
