"""Judge an ETL's health from its state and its pods' statuses (shared by the sensor and the trigger)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from airflow_ais_etl.etl.state import EtlState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_ais_etl.cluster.base import HealthStatus

__all__ = ["HealthReport", "HealthVerdict", "assess"]


class HealthVerdict(str, Enum):
    """What a health check concludes; the value is what logs and events carry."""

    HEALTHY = "healthy"
    """Every pod serves."""
    WAITING = "waiting"
    """Not yet, but it may still become healthy."""
    FAILED = "failed"
    """It will not become healthy without a new init or start."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class HealthReport:
    """One health verdict and the message that explains it."""

    status: HealthVerdict
    message: str

    @property
    def healthy(self) -> bool:
        """Tell whether every pod serves."""
        return self.status == HealthVerdict.HEALTHY


def assess(etl_name: str, state: EtlState, cause: str, statuses: Sequence[HealthStatus]) -> HealthReport:
    """Return the verdict for ETL ``etl_name`` in ``state`` whose pods report ``statuses``.

    An aborted ETL has failed (a membership change stopped it; only a new init or start helps);
    a stopped or degraded one may still be started by another task, so it is waiting.
    """
    if state == EtlState.ABORTED:
        return HealthReport(HealthVerdict.FAILED, f"etl {etl_name} was aborted: {cause or 'unknown cause'}")
    if state != EtlState.RUNNING:
        return HealthReport(HealthVerdict.WAITING, f"etl {etl_name} is {EtlState(state).value}")
    if not statuses:
        return HealthReport(HealthVerdict.WAITING, f"etl {etl_name} has no pods yet")
    sick = [s for s in statuses if not s.healthy]
    if sick:
        detail = "; ".join(
            f"{s.target_id}/{s.pod_name}: {s.status}" + (f" ({s.detail})" if s.detail else "") for s in sick
        )
        return HealthReport(
            HealthVerdict.WAITING,
            f"etl {etl_name}: {len(sick)} of {len(statuses)} pod(s) not ready: {detail}",
        )
    return HealthReport(HealthVerdict.HEALTHY, f"etl {etl_name}: all {len(statuses)} pod(s) are healthy")
