"""The backend contract: the only things the service and the offline engine ask of a cluster.

A backend knows targets, starts and stops the pods of an ETL on them, tells where each pod
listens, reports health/metrics/logs, stores the MD, and reports membership changes. It knows
nothing of the offline engine or of Airflow.
"""

from __future__ import annotations

import abc
import contextlib
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_ais_etl.cluster.directput import DirectPutGrant
    from airflow_ais_etl.etl.leases import Holder
    from airflow_ais_etl.etl.md import EtlMD
    from airflow_ais_etl.etl.msg import InitMsg
    from airflow_ais_etl.etl.podspec import Target


@dataclass(frozen=True)
class PodEndpoint:
    """Where the transformation pod of one ETL on one target answers."""

    target_id: str
    pod_name: str
    url: str
    """Base URL of the pod, e.g. ``http://127.4.5.6:8080`` (no trailing slash)."""
    io_command: tuple[str, ...] | None = None
    """For ``io://``: the pod's original command, sent in the request query."""
    token: str | None = field(default=None, repr=False, compare=False)
    """The ETL's token, sent with every request (pods of the project's runtime check it)."""
    file_socket: str | None = field(default=None, compare=False)
    """Where the pod takes the file transport's messages (local backend; ``runtime.filewire``)."""


class PodStatus(str, Enum):
    """What one ETL pod is doing, in Kubernetes' words: a pod phase, or ``NotReady`` while it runs."""

    RUNNING = "Running"
    """It serves: running and ready."""
    NOT_READY = "NotReady"
    """It runs but its readiness probe fails (or has not passed yet)."""
    PENDING = "Pending"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    """It, or one of its containers, exited."""
    UNKNOWN = "Unknown"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class HealthStatus:
    """Health of one ETL pod: ``status`` is ``Running`` when it serves, else a phase or reason."""

    target_id: str
    pod_name: str
    status: PodStatus
    detail: str = ""

    @property
    def healthy(self) -> bool:
        return self.status == PodStatus.RUNNING

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_id": self.target_id,
            "pod": self.pod_name,
            "status": str(self.status),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class PodMetrics:
    """CPU (cores) and memory (bytes) used by one ETL pod."""

    target_id: str
    pod_name: str
    cpu: float
    mem: int

    def to_dict(self) -> dict[str, Any]:
        return {"target_id": self.target_id, "pod": self.pod_name, "cpu": self.cpu, "mem": self.mem}


@dataclass(frozen=True)
class PodLogs:
    """The captured log of one ETL pod."""

    target_id: str
    pod_name: str
    logs: str

    def to_dict(self) -> dict[str, Any]:
        return {"target_id": self.target_id, "pod": self.pod_name, "logs": self.logs}


@dataclass(frozen=True)
class BucketRef:
    """A bucket as the target gateway knows it: provider and name in ``uname`` form."""

    provider: str
    name: str
    extra: dict[str, str] = field(default_factory=dict)


class MembershipWatch(abc.ABC):
    """A running watch; ``close`` stops it. Callbacks may arrive from another thread."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def earliest_event(self) -> tuple[float, str] | None:
        """Return the first change seen since the watch began as ``(epoch seconds, cause)``.

        A job asks after an object failed, to report a cluster event that happened before the
        failure (and caused it) instead of the failure. ``None``: nothing seen, or not known.
        """
        return None


class Backend(abc.ABC):
    """What a cluster backend provides to the ETL service and the offline engine."""

    kind: str = ""

    @abc.abstractmethod
    def targets(self) -> list[Target]:
        """Return the current targets (the membership)."""

    @abc.abstractmethod
    def read_md(self) -> EtlMD:
        """Return the stored ETL metadata."""

    @abc.abstractmethod
    def update_md(self, change: Callable[[EtlMD], object]) -> EtlMD:
        """Apply ``change`` to the stored MD atomically (read, change in place, write) and return it."""

    @abc.abstractmethod
    def start_pods(
        self,
        msg: InitMsg,
        *,
        extra_env: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        pod_options: Mapping[str, Any] | None = None,
        wait: bool = True,
    ) -> list[PodEndpoint]:
        """Start one pod of ``msg`` per target and wait until all are ready.

        ``wait=False`` only creates the pods (a deferrable init waits in Airflow's triggerer);
        :meth:`check_started` then polls them and a failed start is removed with :meth:`stop_pods`.

        All or nothing: on any failure every pod started by this call is removed and the error
        (a :class:`~airflow_ais_etl.etl.errors.PodStartError` with context) is raised. ``labels`` and
        ``annotations`` go on every object created (e.g. the Airflow origin, for ``kubectl -l``).
        ``pod_options`` are the ETL's own (checked) pod options
        (:mod:`~airflow_ais_etl.etl.podoptions`); a backend reports those it cannot honour.
        """

    @abc.abstractmethod
    def check_started(self, msg: InitMsg, elapsed: float) -> bool:
        """One poll of the startup wait, ``elapsed`` seconds after the pods of ``msg`` were created.

        True when every pod is ready, False while they may still become so; raises the same
        :class:`~airflow_ais_etl.etl.errors.PodStartError` (with its diagnosis) as the blocking
        :meth:`start_pods` when one never will be, or is not ready within the ETL's timeout.
        """

    @abc.abstractmethod
    def stop_pods(self, name: str, *, cause: str | None = None) -> bool:
        """Stop every pod of ETL ``name``; return whether any was running. Idempotent.

        ``cause`` (e.g. ``etl x stopped by user u@h (pid 1)``) is what the watches of running jobs
        report; without it they say ``etl <name> stopped``.
        """

    @abc.abstractmethod
    def endpoints(self, name: str) -> list[PodEndpoint]:
        """Return the endpoints of the running pods of ``name`` (empty when not running)."""

    @abc.abstractmethod
    def health(self, name: str) -> list[HealthStatus]: ...

    @abc.abstractmethod
    def metrics(self, name: str) -> list[PodMetrics]: ...

    @abc.abstractmethod
    def logs(self, name: str, target_id: str | None = None) -> list[PodLogs]:
        """Return the logs of the running pods of ``name``, else the last ones its stopped pods left.

        The one way to read "last logs" on every backend: a stop or an abort keeps the pods' logs
        (or their tails) until the ETL starts again or is removed, so an aborted task and the ETL
        view quote the failing target's log after its pod is gone.

        :raises EtlNotFoundError: nothing runs and no stopped pod left logs
        :raises ValidationError: ``target_id`` is not one of the pods' targets
        """

    @abc.abstractmethod
    def watch_membership(self, name: str, on_change: Callable[[str], None]) -> MembershipWatch:
        """Call ``on_change(cause)`` once when the targets or the pods of ``name`` change.

        ``cause`` names what changed, e.g. ``target t2 left`` or ``pod of t1 exited with code -9``,
        or ``etl <name> stopped``. The watch compares against the state seen when it started.
        """

    @abc.abstractmethod
    def abort(self, name: str, cause: str) -> None:
        """Record why ``name`` is aborted (running jobs' watches read it) and stop its pods."""

    @abc.abstractmethod
    def aborted_cause(self, name: str) -> str | None:
        """Return why ``name`` was last aborted, None when it was not (or was started since)."""

    @abc.abstractmethod
    def add_stats(self, name: str, delta: Mapping[str, int]) -> None:
        """Add ``delta`` to the aggregated statistics of ``name`` (kept in the cluster)."""

    @abc.abstractmethod
    def stats(self, name: str) -> dict[str, int]:
        """Return the aggregated statistics of ``name`` (objects and bytes, inline and offline)."""

    @abc.abstractmethod
    def forget(self, name: str) -> None:
        """Drop what the cluster keeps of ``name`` besides its MD entry (stats, abort cause, logs, jobs)."""

    @abc.abstractmethod
    def bucket_ref(self, url: str) -> BucketRef:
        """Return how the target gateway names the bucket at ``url`` (registering it if needed)."""

    @abc.abstractmethod
    def read_leases(self) -> dict[str, Any]:
        """Return the lease document of every ETL (:mod:`~airflow_ais_etl.etl.leases`)."""

    @abc.abstractmethod
    def update_leases(self, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
        """Apply ``change`` to the stored lease document atomically and return it."""

    @abc.abstractmethod
    def read_jobs(self, name: str) -> dict[str, Any]:
        """Return the job registry of ``name`` (:mod:`~airflow_ais_etl.etl.jobs`; empty when none).

        It outlives stops and starts (a stopped ETL still lists its last jobs); ``forget`` drops it.
        """

    @abc.abstractmethod
    def update_jobs(self, name: str, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
        """Apply ``change`` to the job registry of ``name`` atomically and return it."""

    def holder_gone(self, holder: Holder) -> bool:
        """Whether ``holder``'s process is known to be gone (its leases then count no more).

        Only a backend whose holders all run on this machine can tell; the default relies on expiry.
        """
        return False

    def running_names(self) -> list[str]:
        """Return the ETLs that have pods, defined or not (an init killed mid-way leaves some)."""
        return []

    def lifecycle(self) -> contextlib.AbstractContextManager[None]:
        """Hold the backend's lifecycle lock: init, start, stop and rm of ETLs take turns under it.

        The local backend serialises them across processes with a file lock; the default is none.
        """
        return contextlib.nullcontext()

    def grant(self, name: str, url: str) -> contextlib.AbstractContextManager[BucketRef]:
        """Let ETL ``name``'s pods read the bucket at ``url`` while the block (one job) runs.

        Backends whose gateway knows no grants serve every registered bucket: this registers it.
        """
        return contextlib.nullcontext(self.bucket_ref(url))

    def direct_put_grant(self, name: str, url: str, conn_id: str | None = None) -> DirectPutGrant | None:
        """Let ETL ``name``'s pods PUT results into the bucket at ``url`` for one job; ``None``: not here.

        :param conn_id: the Airflow connection the job opens ``url`` with (object stores)
        """
        return None

    def close(self) -> None:
        """Release client resources (connections, threads)."""
