"""Wait for an ETL's pods to start one poll at a time, so the wait can run outside the init call.

A deferrable init creates the pods (``AisEtl.init(..., wait=False)``) and its trigger polls
:func:`check_start` in Airflow's triggerer; a blocking init that finds its identical ETL still
starting (another run's deferrable init) waits with :func:`wait_started`. A start that fails is
removed by :func:`check_start`, as the blocking start removes its own, so no pod outlives a failed
init.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from airflow_ais_etl.etl.constants import DEFAULT_TIMEOUT
from airflow_ais_etl.etl.duration import probing_interval
from airflow_ais_etl.etl.errors import EtlError

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.base import Backend
    from airflow_ais_etl.etl.msg import InitMsg

__all__ = ["check_start", "wait_started"]

_MAX_INTERVAL = 1.0


def check_start(backend: Backend, msg: InitMsg, elapsed: float) -> bool:
    """Return whether every pod of ``msg`` is ready (and, for ``fqn``, speaks its protocol).

    A start that never will succeed raises the backend's :class:`~airflow_ais_etl.etl.errors.PodStartError`
    (the same diagnosis as a blocking init) after its pods were stopped.
    """
    from airflow_ais_etl.dataplane.protoprobe import check_fqn_protocol

    try:
        if not backend.check_started(msg, elapsed):
            return False
        check_fqn_protocol(msg, backend.endpoints(msg.name))
    except EtlError:
        backend.stop_pods(msg.name, cause=f"etl {msg.name} failed to start")
        raise
    return True


def wait_started(backend: Backend, msg: InitMsg) -> None:
    """Block until the pods of ``msg`` are ready, or until one never will be.

    For an init that found its identical ETL running: it waits for pods another init is still
    starting, and leaves an ETL whose pods fail as it is (its caller reports it, e.g. degraded;
    only the init that started the pods removes them).
    """
    interval = min(probing_interval(msg.timeout or DEFAULT_TIMEOUT), _MAX_INTERVAL)
    started = time.monotonic()
    while True:
        try:
            if backend.check_started(msg, time.monotonic() - started):
                return
        except EtlError:
            return
        time.sleep(interval)
