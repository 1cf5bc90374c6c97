"""Leases: who uses an ETL right now, so that a stop or a definition change by someone else can wait or say who.

Every job (offline bucket transform, inline transform) and every init holds a lease on its ETL
while it runs. A lease names its holder (an Airflow task instance, or a user's process), what it
does, and until when it counts: the holder renews it every :data:`RENEW_SECONDS` and it expires
:data:`LEASE_TTL` after the last renewal, so a crashed holder blocks nobody for long (the local
backend also drops a lease at once when its process is gone).

The leases of every ETL are one JSON document, ``{etl name: {lease id: lease}}``, that each
backend stores atomically. Pure: the functions here edit that document; storing, renewing and
naming this process live in :mod:`airflow_ais_etl.cluster.leases`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.etl.errors import EtlError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_ais_etl.etl.origin import Origin

__all__ = [
    "DEFINITION_CHANGE_MODES",
    "LEASE_TTL",
    "RENEW_SECONDS",
    "EtlInUseError",
    "Holder",
    "Lease",
    "blocking",
    "describe_leases",
    "drop_lease",
    "leases_of",
    "prune",
    "put_lease",
]

LEASE_TTL = 60.0
"""Seconds a lease counts after its last renewal."""
RENEW_SECONDS = 10.0
"""How often a running holder renews its lease."""

REFUSE, REPLACE_IF_FREE, WAIT_THEN_REPLACE, REPLACE = (
    "refuse",
    "replace_if_free",
    "wait_then_replace",
    "replace",
)
DEFINITION_CHANGE_MODES = (REFUSE, REPLACE_IF_FREE, WAIT_THEN_REPLACE, REPLACE)
"""What an init does when the ETL runs with another definition (``AisEtl.init``'s ``on_definition_change``):

``refuse``: never replace a running ETL (AIS's ``ais etl init``; the API and CLI default);
``replace_if_free``: replace it unless another run's job holds it, else fail naming the holder;
``wait_then_replace``: likewise, but first wait for the holders to finish (the operators' default);
``replace``: replace it now, aborting the jobs that use it (``replace=True``).
"""


class EtlInUseError(EtlError):
    """Report that other holders' leases keep an ETL from being stopped or replaced."""

    def __init__(self, reason: str, *, etl_name: str = "", holders: Iterable[str] = ()) -> None:
        super().__init__(reason, etl_name=etl_name)
        self.holders = list(holders)


@dataclass(frozen=True)
class Holder:
    """Who holds a lease or stops an ETL: an Airflow task instance, or else a user's process.

    ``pid`` and ``start`` (the process start time) tell whether the holding process still runs.
    """

    user: str = ""
    host: str = ""
    pid: int = 0
    start: str | None = None
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    map_index: str | None = None
    try_number: str | None = None

    def with_origin(self, origin: Origin | None) -> Holder:
        """Return this process's holder acting for ``origin`` (an Airflow task); unchanged without one."""
        if origin is None or not origin.run_id:
            return self
        return Holder(
            self.user,
            self.host,
            self.pid,
            self.start,
            origin.dag_id,
            origin.run_id,
            origin.task_id,
            origin.map_index,
            origin.try_number,
        )

    @property
    def is_task(self) -> bool:
        return bool(self.run_id)

    def same_holder(self, other: Holder) -> bool:
        """Whether ``other`` is the same DAG run (tasks) or the same process (others): it never blocks us."""
        if self.is_task or other.is_task:
            return (self.dag_id, self.run_id) == (other.dag_id, other.run_id)
        return (self.host, self.pid, self.start) == (other.host, other.pid, other.start)

    def describe(self) -> str:
        """``task t[2] (try 2) of run R (dag D)`` or ``user u@h (pid 123)``."""
        if not self.is_task:
            return f"user {self.user or '?'}@{self.host or '?'} (pid {self.pid})"
        index = f"[{self.map_index}]" if self.map_index not in (None, "", "-1") else ""
        attempt = f" (try {self.try_number})" if self.try_number not in (None, "", "0", "1") else ""
        return f"task {self.task_id}{index}{attempt} of run {self.run_id} (dag {self.dag_id})"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

    @classmethod
    def from_dict(cls, data: Any) -> Holder:
        data = data if isinstance(data, dict) else {}
        text = {k: None if data.get(k) is None else str(data[k]) for k in _OPTIONAL}
        return cls(
            str(data.get("user") or ""),
            str(data.get("host") or ""),
            _int(data.get("pid")),
            text["start"],
            text["dag_id"],
            text["run_id"],
            text["task_id"],
            text["map_index"],
            text["try_number"],
        )


_OPTIONAL = ("start", "dag_id", "run_id", "task_id", "map_index", "try_number")


@dataclass(frozen=True)
class Lease:
    """One holder's claim on one ETL: ``purpose`` is what it does, ``expires`` an epoch time."""

    id: str
    holder: Holder
    purpose: str
    acquired: float
    expires: float

    def describe(self) -> str:
        """``offline transform by task t of run R (dag D)``."""
        return f"{self.purpose} by {self.holder.describe()}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "holder": self.holder.to_dict(),
            "purpose": self.purpose,
            "acquired": self.acquired,
            "expires": self.expires,
        }

    @classmethod
    def from_dict(cls, lease_id: str, data: Any) -> Lease:
        data = data if isinstance(data, dict) else {}
        return cls(
            lease_id,
            Holder.from_dict(data.get("holder")),
            str(data.get("purpose") or "job"),
            _float(data.get("acquired")),
            _float(data.get("expires")),
        )


def put_lease(doc: dict[str, Any], name: str, lease: Lease) -> None:
    """Add or renew ``lease`` on ETL ``name`` in the lease document."""
    mine = doc.get(name) if isinstance(doc.get(name), dict) else None
    if mine is None:
        mine = doc[name] = {}
    mine[lease.id] = lease.to_dict()


def drop_lease(doc: dict[str, Any], name: str, lease_id: str) -> None:
    """Remove one lease (gone already is fine); an ETL without leases leaves the document."""
    mine = doc.get(name)
    if isinstance(mine, dict):
        mine.pop(lease_id, None)
        if not mine:
            doc.pop(name, None)


def leases_of(doc: dict[str, Any], name: str) -> list[Lease]:
    """Return the leases recorded on ETL ``name`` (expired ones too), oldest first."""
    mine = doc.get(name)
    if not isinstance(mine, dict):
        return []
    return sorted((Lease.from_dict(str(k), v) for k, v in mine.items()), key=lambda lease: lease.acquired)


def prune(doc: dict[str, Any], now: float, gone: Callable[[Holder], bool] = lambda _h: False) -> None:
    """Drop every lease that expired before ``now`` or whose holder is ``gone`` (a dead process)."""
    for name in list(doc):
        for lease in leases_of(doc, name):
            if lease.expires < now or gone(lease.holder):
                drop_lease(doc, name, lease.id)
        if not isinstance(doc.get(name), dict):
            doc.pop(name, None)


def blocking(leases: Iterable[Lease], by: Holder) -> list[Lease]:
    """Return the leases that keep ``by`` from stopping or replacing the ETL: those of other holders."""
    return [lease for lease in leases if not lease.holder.same_holder(by)]


def describe_leases(leases: Iterable[Lease]) -> str:
    """``offline transform by task ... ; init by user ...`` (one clause per lease)."""
    return "; ".join(lease.describe() for lease in leases)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
