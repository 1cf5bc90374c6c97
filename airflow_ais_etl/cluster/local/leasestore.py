"""The local backend's lease store: ``<home>/leases.json``, edited under the state lock.

Every holder of a local home runs on this machine, so a lease whose process is gone (pid and start
time, a reused pid does not count) stops counting at once, without waiting for it to expire.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.grants import process_start
from airflow_ais_etl.cluster.local.state import read_json, write_json_atomic

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_ais_etl.cluster.local.state import LocalState
    from airflow_ais_etl.etl.leases import Holder

__all__ = ["LocalLeases"]


class LocalLeases:
    """The lease methods of :class:`~airflow_ais_etl.cluster.local.backend.LocalBackend`."""

    state: LocalState

    def read_leases(self) -> dict[str, Any]:
        data = read_json(self.state.leases_file, {})
        return data if isinstance(data, dict) else {}

    def update_leases(self, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
        with self.state.lock():
            doc = self.read_leases()
            change(doc)
            write_json_atomic(self.state.leases_file, doc)
            return doc

    def holder_gone(self, holder: Holder) -> bool:
        """A holder on this machine whose process (pid and start time) no longer runs is gone."""
        return holder.host == socket.gethostname() and process_start(holder.pid) != holder.start
