"""Judge an ETL's health from its state and its pods' statuses (shared by the sensor and the trigger)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_ais_etl.cluster.base import HealthStatus

__all__ = ["FAILED", "HEALTHY", "WAITING", "HealthReport", "assess"]

HEALTHY = "healthy"
WAITING = "waiting"
FAILED = "failed"


@dataclass(frozen=True)
class HealthReport:
    """One health verdict: ``healthy``, ``waiting`` (may still become healthy) or ``failed`` (will not)."""

    status: str
    message: str

    @property
    def healthy(self) -> bool:
        return self.status == HEALTHY


def assess(etl_name: str, state: str, cause: str, statuses: Sequence[HealthStatus]) -> HealthReport:
    """Return the verdict for ETL ``etl_name`` in ``state`` whose pods report ``statuses``.

    An aborted ETL has failed (a membership change stopped it; only a new init or start helps);
    a stopped or degraded one may still be started by another task, so it is waiting.
    """
    if state == "aborted":
        return HealthReport(FAILED, f"etl {etl_name} was aborted: {cause or 'unknown cause'}")
    if state != "running":
        return HealthReport(WAITING, f"etl {etl_name} is {state}")
    if not statuses:
        return HealthReport(WAITING, f"etl {etl_name} has no pods yet")
    sick = [s for s in statuses if not s.healthy]
    if sick:
        detail = "; ".join(
            f"{s.target_id}/{s.pod_name}: {s.status}" + (f" ({s.detail})" if s.detail else "") for s in sick
        )
        return HealthReport(
            WAITING, f"etl {etl_name}: {len(sick)} of {len(statuses)} pod(s) not ready: {detail}"
        )
    return HealthReport(HEALTHY, f"etl {etl_name}: all {len(statuses)} pod(s) are healthy")
