"""The state of an ETL, as ``list``, ``init`` and the health checks report it."""

from __future__ import annotations

from enum import Enum

__all__ = ["EtlState", "etl_state"]


class EtlState(str, Enum):
    """Where an ETL is; the value is what JSON and XCom carry (``EtlState.RUNNING == "running"``)."""

    RUNNING = "running"
    """One serving pod on every target."""
    DEGRADED = "degraded"
    """Some pods are gone (a target joined or its pod died)."""
    STOPPED = "stopped"
    """No pods; the definition is kept, ``start`` brings it back."""
    ABORTED = "aborted"
    """No pods, because a membership change stopped it (the cause is recorded)."""

    def __str__(self) -> str:
        return self.value


def etl_state(pods: int, targets: int, aborted_cause: str) -> EtlState:
    """Derive the state from how many pods serve on how many targets, and any abort cause.

    :param pods: serving pods of the ETL
    :param targets: targets in the cluster now
    :param aborted_cause: why the ETL was aborted, ``""`` when it was not
    """
    if pods:
        return EtlState.RUNNING if pods == targets else EtlState.DEGRADED
    return EtlState.ABORTED if aborted_cause else EtlState.STOPPED
