"""Pod logs on the local backend: the running pods', or those a stopped or aborted ETL's pods left.

A pod's logs stay in its directory until the ETL starts again, so the task of an aborted job can
still quote the last lines of the failing target's pod (``ais-etl logs`` shows them too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_ais_etl.cluster.base import PodLogs
from airflow_ais_etl.cluster.local.processes import logs_in
from airflow_ais_etl.cluster.local.targetids import tid_order
from airflow_ais_etl.etl.errors import EtlNotFoundError, ValidationError
from airflow_ais_etl.etl.podspec import pod_name

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from airflow_ais_etl.cluster.local.processes import LocalPod

__all__ = ["pod_logs"]


def pod_logs(
    etl_dir: Path, name: str, running: Mapping[str, LocalPod], target_id: str | None = None
) -> list[PodLogs]:
    """Return the logs of ETL ``name``'s running pods, else of the pods it last ran (per target).

    :raises EtlNotFoundError: nothing runs and no pod left logs
    :raises ValidationError: ``target_id`` is not one of the pods' targets
    """
    pods = {tid: (pod.name, pod.workdir) for tid, pod in running.items()}
    if not pods and etl_dir.is_dir():
        left = sorted(((d.name, d) for d in etl_dir.iterdir() if (d / "logs").is_dir()), key=tid_order)
        pods = {tid: (pod_name(name, tid), d) for tid, d in left}
    if not pods:
        raise EtlNotFoundError(f"etl job {name} is not running (start it first)", etl_name=name)
    if target_id is not None and target_id not in pods:
        raise ValidationError(f"unknown target {target_id!r} for etl {name} (targets: {', '.join(pods)})")
    return [PodLogs(tid, pname, logs_in(d)) for tid, (pname, d) in pods.items() if target_id in (None, tid)]
