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
    from collections.abc import Callable, Mapping, Sequence

    from airflow_ais_etl.cluster.local.processes import LocalPod
    from airflow_ais_etl.etl.msg import InitMsg
    from airflow_ais_etl.etl.podspec import Target

__all__ = ["check_ready", "wait_ready"]

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
    interval = min(probing_interval(msg.timeout or DEFAULT_TIMEOUT), _MAX_INTERVAL)
    started = time.monotonic()
    while True:
        time.sleep(interval)
        if check_ready(msg, pods, pod_spec, time.monotonic() - started):
            return


def check_ready(
    msg: InitMsg,
    pods: Sequence[tuple[Target, LocalPod | None]],
    pod_spec: Callable[[str], Mapping[str, Any]],
    elapsed: float,
) -> bool:
    """One poll of the startup wait, ``elapsed`` seconds after the pods started: are all ready?

    Raises :class:`PodStartError` when a pod exited, is gone (``None``: the ETL was stopped while
    starting), answers for another process, or is not ready once the ETL's timeout has passed.
    The blocking :func:`wait_ready` and a trigger waiting in Airflow's triggerer both call it.
    """
    timeout = msg.timeout or DEFAULT_TIMEOUT
    waiting: tuple[str, LocalPod, str] | None = None
    for target, pod in pods:
        if pod is None:
            raise PodStartError(
                "pod is gone while starting (the ETL was stopped or aborted)",
                etl_name=msg.name,
                target=target.id,
            )
        _fail_if_exited(msg, target.id, pod)
        url = readiness_url(pod_spec(target.id), pod.ip)
        ready, detail = probe_http(url, timeout=_PROBE_TIMEOUT) if url else (True, "no probe")
        if ready:
            _fail_if_not_own(msg, target.id, pod, url)
        elif waiting is None:
            waiting = (target.id, pod, detail)
    if waiting is not None and elapsed > timeout:
        raise _not_ready(msg, *waiting[:2], timeout, waiting[2])
    return waiting is None


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
