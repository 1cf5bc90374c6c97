"""Exceptions raised by the Airflow face; all of them belong to the model's tree (never AirflowException)."""

from __future__ import annotations

from typing import Any

from airflow_ais_etl.etl.errors import AbortError, AisEtlError, EtlError

__all__ = [
    "AisEtlHealthCheckFailed",
    "AisEtlTaskKilledError",
    "AisEtlTriggerEventError",
]


class AisEtlTaskKilledError(AbortError):
    """Fail a task whose job was aborted because the task was killed (it must never end SUCCESS).

    :param stats: the job's stats snapshot when known (how much was done)
    """

    def __init__(
        self,
        reason: str,
        *,
        cause: str = "task killed",
        etl_name: str = "",
        stats: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(reason, cause=cause, etl_name=etl_name)
        self.stats: dict[str, Any] = dict(stats or {})


class AisEtlHealthCheckFailed(EtlError):
    """Report that an ETL did not become healthy (missing, aborted, or the health check itself failed).

    :param status: the trigger event status (``failed`` or ``error``) or ``poke``
    """

    def __init__(self, reason: str, *, status: str = "failed", etl_name: str = "") -> None:
        super().__init__(reason, etl_name=etl_name)
        self.status = status


class AisEtlTriggerEventError(AisEtlError):
    """Reject a trigger event that is missing or malformed (never treat it as success).

    :param event: the offending event
    """

    def __init__(self, message: str, *, event: Any = None) -> None:
        super().__init__(message)
        self.event = event
