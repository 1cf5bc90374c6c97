"""Judge an ETL's health from its state and its pods' statuses (shared by the sensor and the trigger)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.etl.errors import EtlError, EtlNotFoundError, PodStartError
from airflow_ais_etl.etl.state import EtlState
from airflow_ais_etl.startwait import check_start

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_ais_etl.cluster.base import HealthStatus
    from airflow_ais_etl.service import AisEtl

__all__ = ["HealthReport", "HealthVerdict", "assess", "start_error", "start_report"]


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
    error: dict[str, Any] = field(default_factory=dict)
    """A failed start's :class:`~airflow_ais_etl.etl.errors.PodStartError` fields (:func:`start_error`)."""

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


def start_report(api: AisEtl, etl_name: str, elapsed: float) -> HealthReport:
    """Return the verdict on a start in progress, ``elapsed`` seconds after an init created the pods.

    A start that never will succeed is ``failed`` with the blocking init's diagnosis (its pods are
    removed by then); ``error`` carries that exception's fields so the task raises the same error.
    """
    try:
        msg = api.view(etl_name)
        ready = check_start(api.backend, msg, elapsed)
    except EtlNotFoundError as exc:
        return HealthReport(HealthVerdict.FAILED, str(exc))
    except EtlError as exc:
        fields = {key: value for key, value in vars(exc).items() if isinstance(value, (str, int, type(None)))}
        return HealthReport(HealthVerdict.FAILED, str(exc), {"reason": exc.reason, **fields})
    if ready:
        return HealthReport(HealthVerdict.HEALTHY, f"etl {etl_name}: every pod started and is ready")
    return HealthReport(HealthVerdict.WAITING, f"etl {etl_name}: pods starting ({elapsed:.0f}s)")


def start_error(error: dict[str, Any], etl_name: str, message: str) -> PodStartError:
    """Rebuild the :class:`PodStartError` a failed start reported (:attr:`HealthReport.error`)."""
    known = ("exit_code", "log_tail", "etl_name", "target", "pod_name", "svc_name")
    kwargs = {key: error[key] for key in known if error.get(key) is not None}
    return PodStartError(str(error.get("reason") or message), **{"etl_name": etl_name, **kwargs})
