"""The init lease a deferred start holds while the triggerer waits for its pods.

A deferrable init's worker drops its lease when it defers; the trigger takes one for the same task
so that a teardown of another DAG run (``AisEtlStopOperator``) leaves a starting ETL running, as it
does during a blocking init. The trigger renews it at every poll (no thread of its own) and drops
it when it fires or is cancelled; if the triggerer dies, the lease expires by itself.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import TYPE_CHECKING

from airflow_ais_etl.cluster.leases import acting_as
from airflow_ais_etl.etl.leases import LEASE_TTL, Lease, drop_lease, put_lease
from airflow_ais_etl.etl.origin import Origin
from airflow_ais_etl.service import INIT

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_ais_etl.cluster.base import Backend

__all__ = ["StartLease"]

log = logging.getLogger(__name__)


class StartLease:
    """One init lease on ``etl_name`` for the task ``origin``, taken at the first :meth:`renew`."""

    def __init__(self, etl_name: str, origin: Mapping[str, str]) -> None:
        self.etl_name = etl_name
        self.origin = Origin.from_mapping(origin)
        self.id = uuid.uuid4().hex
        self._backend: Backend | None = None
        self._acquired = 0.0

    def renew(self, backend: Backend) -> None:
        """Take or extend the lease for :data:`LEASE_TTL` seconds from now."""
        with acting_as(self.origin) as holder:
            now = time.time()
            self._acquired = self._acquired or now
            lease = Lease(self.id, holder, INIT, self._acquired, now + LEASE_TTL)
        backend.update_leases(lambda doc: put_lease(doc, self.etl_name, lease))
        self._backend = backend

    def release(self) -> None:
        """Drop the lease (a failure only warns: it expires by itself)."""
        if self._backend is None:
            return
        try:
            self._backend.update_leases(lambda doc: drop_lease(doc, self.etl_name, self.id))
        except Exception as exc:
            log.warning("etl %s: could not drop the start's lease: %s", self.etl_name, exc)
