"""What ``list`` and ``init`` report of one ETL (a value the CLI, XCom and the UI plugin carry)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_ais_etl.etl.state import EtlState

__all__ = ["EtlInfo"]


@dataclass(frozen=True)
class EtlInfo:
    """One ETL as ``list``/``init`` report it."""

    name: str
    kind: str
    comm_type: str
    arg_type: str
    runtime: str
    state: EtlState
    """Running, degraded (some pods gone), stopped, or aborted (with ``cause``)."""
    pods: int
    cause: str = ""
    stats: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-safe form (the state as its plain string) that the CLI and XCom carry."""
        return {
            "name": self.name,
            "kind": self.kind,
            "comm_type": self.comm_type,
            "arg_type": self.arg_type,
            "runtime": self.runtime,
            "state": EtlState(self.state).value,
            "pods": self.pods,
            "cause": self.cause,
            "stats": dict(self.stats),
        }
