"""The local backend's job registries: ``<home>/jobs/<etl>.json``, each edited under its own lock.

Private files under the home (0600, like every file there). Outside ``etls/<etl>/`` on purpose: a
job that outlives an ``rm --force`` may write its last record, and must not bring the ETL's
directory back. A lock per ETL keeps a job's progress writes off the home's state lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.local.state import read_json, write_json_atomic
from airflow_ais_etl.cluster.private import locked

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_ais_etl.cluster.local.state import LocalState

__all__ = ["LocalJobs"]


class LocalJobs:
    """The job registry methods of :class:`~airflow_ais_etl.cluster.local.backend.LocalBackend`."""

    state: LocalState

    def _jobs_file(self, name: str) -> Path:
        return self.state.home / "jobs" / f"{name}.json"

    def read_jobs(self, name: str) -> dict[str, Any]:
        data = read_json(self._jobs_file(name), {})
        return data if isinstance(data, dict) else {}

    def update_jobs(self, name: str, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
        path = self._jobs_file(name)
        with locked(path.with_suffix(".lock")):
            doc = self.read_jobs(name)
            change(doc)
            write_json_atomic(path, doc)
            return doc

    def forget_jobs(self, name: str) -> None:
        """Drop the registry of ``name`` (``rm``)."""
        path = self._jobs_file(name)
        with locked(path.with_suffix(".lock")):
            path.unlink(missing_ok=True)
