"""The ETL view's access to the ETL service: one service per ``ais_etl`` connection, read like the hook.

Everything here goes through :class:`~airflow_ais_etl.service.AisEtl`, so both backends look alike.
A connection that is not of type ``ais_etl`` is refused (a request names connections by id).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_ais_etl.hooks.ais_etl import AisEtlHook
from airflow_ais_etl.hooks.settings import parse_extras

if TYPE_CHECKING:
    from airflow_ais_etl.service import AisEtl, EtlInfo

__all__ = ["LOG_TAIL_LINES", "Clusters", "etl_overview", "tail"]

CACHE_SECONDS = 60.0
LOG_TAIL_LINES = 200


class Clusters:
    """The ETL services of the connections the view shows, each kept for ``CACHE_SECONDS``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._apis: dict[str, tuple[float, AisEtl]] = {}

    def api(self, conn_id: str) -> AisEtl:
        """Return the service of connection ``conn_id`` (a ``LookupError`` when it is not an AIS ETL one)."""
        now = time.monotonic()
        with self._lock:
            cached = self._apis.get(conn_id)
            if cached is not None and now - cached[0] < CACHE_SECONDS:
                return cached[1]
        api = AisEtlHook(conn_id, settings=self._settings(conn_id)).api
        with self._lock:
            old = self._apis.get(conn_id)
            self._apis[conn_id] = (now, api)
        if old is not None and old[1] is not api:
            old[1].backend.close()
        return api

    @staticmethod
    def _settings(conn_id: str) -> Any:
        try:
            conn = AisEtlHook.get_connection(conn_id)
        except AirflowNotFoundException:
            if conn_id != AisEtlHook.default_conn_name:
                raise LookupError(f"connection {conn_id!r} does not exist") from None
            return parse_extras({})  # no default connection: the local backend, as the hook does
        if conn.conn_type != AisEtlHook.conn_type:
            raise LookupError(
                f"connection {conn_id!r} is of type {conn.conn_type!r}, not {AisEtlHook.conn_type!r}"
            )
        return parse_extras(conn.extra_dejson)


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of ``text``."""
    return "\n".join(text.splitlines()[-lines:])


def _targets(api: AisEtl, name: str) -> list[dict[str, Any]]:
    """Return one row per target: its pod's health, and CPU/memory when the backend measures them."""
    rows: dict[str, dict[str, Any]] = {}
    for h in api.health(name):
        rows[h.target_id] = {**h.to_dict(), "healthy": h.healthy, "cpu": None, "mem": None}
    try:
        metrics = api.metrics(name)
    except Exception as exc:  # metrics are optional (e.g. no metrics-server): health still shows
        metrics = []
        for row in rows.values():
            row["metrics_error"] = str(exc)
    for m in metrics:
        row = rows.setdefault(
            m.target_id, {"target_id": m.target_id, "pod": m.pod_name, "status": "", "healthy": False}
        )
        row.update(cpu=m.cpu, mem=m.mem)
    return [rows[k] for k in sorted(rows)]


def etl_overview(api: AisEtl, info: EtlInfo, conn_id: str) -> dict[str, Any]:
    """Return one ETL as the view shows it: definition summary, state, stats and per-target pods."""
    out = {**info.to_dict(), "conn_id": conn_id, "backend": api.backend.kind, "targets": [], "error": ""}
    try:
        out["targets"] = _targets(api, info.name) if info.pods else []
        out["leases"] = [lease.describe() for lease in api.leases(info.name)]  # who uses it now
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out
