"""Wait for an ETL's local pods to answer their readiness probes, failing fast when one exits.

The local twin of :mod:`~airflow_ais_etl.cluster.kubernetes.startup`: a pod that exited, or that is
not ready within the ETL's timeout, becomes a :class:`PodStartError` carrying its last log lines.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.local.network import probe_http, readiness_url
from airflow_ais_etl.cluster.local.podnet import listener_problem
from airflow_ais_etl.cluster.local.processes import log_tail
from airflow_ais_etl.etl.constants import DEFAULT_TIMEOUT
from airflow_ais_etl.etl.duration import format_duration, probing_interval
from airflow_ais_etl.etl.errors import PodStartError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_ais_etl.cluster.local.processes import LocalPod
    from airflow_ais_etl.etl.msg import InitMsg
    from airflow_ais_etl.etl.podspec import Target

__all__ = ["wait_ready"]

_MAX_INTERVAL = 0.25
BIND_HINT = (
    ": its server could not bind its port, which another process owns. Local pods share this "
    "machine's network, each on its own address: bind to $(POD_IP) (env POD_IP), not 0.0.0.0 in code"
)
_PROBE_TIMEOUT = 5


def wait_ready(
    msg: InitMsg, pods: list[tuple[Target, LocalPod]], pod_spec: Callable[[str], Mapping[str, Any]]
) -> None:
    """Poll until every pod is ready; raise :class:`PodStartError` for the first that never will be.

    :param pod_spec: returns the materialised pod spec of a target id (it holds the readiness probe)
    """
    timeout = msg.timeout or DEFAULT_TIMEOUT
    interval = min(probing_interval(timeout), _MAX_INTERVAL)
    deadline = time.monotonic() + timeout
    pending = {t.id: p for t, p in pods}
    detail: dict[str, str] = {}
    while pending:
        time.sleep(interval)
        for tid, pod in list(pending.items()):
            _fail_if_exited(msg, tid, pod)
            url = readiness_url(pod_spec(tid), pod.ip)
            ready, detail[tid] = probe_http(url, timeout=_PROBE_TIMEOUT) if url else (True, "no probe")
            if ready:
                _fail_if_not_own(msg, tid, pod, url)
                del pending[tid]
        if pending and time.monotonic() > deadline:
            tid, pod = next(iter(pending.items()))
            raise _not_ready(msg, tid, pod, timeout, detail.get(tid, "not run"))


def _fail_if_exited(msg: InitMsg, tid: str, pod: LocalPod) -> None:
    exited = pod.exited()
    if not exited:
        return
    container, code = exited
    tail = log_tail(pod.workdir / "logs" / f"{container}.log")
    hint = BIND_HINT if "address already in use" in tail.lower() else ""
    raise PodStartError(
        f"pod exited with code {code} before becoming ready (container {container!r}){hint}; "
        f"last log lines:\n{tail}",
        exit_code=code,
        log_tail=tail,
        etl_name=msg.name,
        target=tid,
        pod_name=pod.name,
    )


def _fail_if_not_own(msg: InitMsg, tid: str, pod: LocalPod, url: str | None) -> None:
    """A probe answered by another pod's (or any other) process is a failure, never readiness."""
    port = urllib.parse.urlsplit(url).port if url else None
    problem = listener_problem(pod.ip, port, [c.shim_pid for c in pod.containers]) if port else None
    if problem:
        raise PodStartError(problem, etl_name=msg.name, target=tid, pod_name=pod.name)


def _not_ready(msg: InitMsg, tid: str, pod: LocalPod, timeout: float, probe_detail: str) -> PodStartError:
    tail = log_tail(pod.workdir / "logs" / f"{pod.containers[-1].name}.log")
    return PodStartError(
        f"pod did not become ready within {format_duration(timeout)} "
        f"(readiness probe: {probe_detail}); last log lines:\n{tail}",
        log_tail=tail,
        etl_name=msg.name,
        target=tid,
        pod_name=pod.name,
    )
