"""Tell the health of one running ETL pod: its status first, then its own readiness endpoint.

The kubelet's Ready condition lags behind a transformer that stopped answering, so a pod that
looks Ready is probed once more directly (the URL comes from its readiness probe).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.base import HealthStatus, PodStatus
from airflow_ais_etl.cluster.kubernetes.objects import (
    PodPhase,
    label_of,
    main_container,
    main_port,
    name_of,
    phase_of,
    restarts,
)
from airflow_ais_etl.cluster.kubernetes.startup import describe_pod, pod_ready
from airflow_ais_etl.etl.podspec import POD_LABEL_TARGET

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["health_of", "probe", "readiness_url", "status_health"]

_PROBE_TIMEOUT = 5


def readiness_url(pod: Mapping[str, Any]) -> str | None:
    """Return the URL of the main container's HTTP readiness probe (None without one or an IP)."""
    http_get = (main_container(pod).get("readinessProbe") or {}).get("httpGet") or {}
    ip = (pod.get("status") or {}).get("podIP")
    if not http_get or not ip:
        return None
    port = http_get.get("port")
    if not isinstance(port, int):
        port = main_port(pod)
    path = str(http_get.get("path") or "/")
    return f"http://{ip}:{port}{path if path.startswith('/') else '/' + path}"


def probe(url: str) -> tuple[bool, str]:
    """GET ``url``; return whether it answered 2xx/3xx and what it answered."""
    try:
        with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT) as resp:
            return 200 <= resp.status < 400, f"readiness endpoint answered {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"readiness endpoint {url} answered {exc.code}"
    except OSError as exc:
        return False, f"readiness endpoint {url} unreachable: {exc}"


def status_health(pod: Mapping[str, Any]) -> HealthStatus:
    """Return the health the pod's status alone tells (``Running`` still needs the probe)."""
    tid, pname = label_of(pod, POD_LABEL_TARGET), name_of(pod)
    phase = phase_of(pod)
    main = ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]
    state = main.get("state") or {}
    if phase is not PodPhase.RUNNING:
        return HealthStatus(tid, pname, PodStatus(phase.value), describe_pod(pod))
    if state.get("terminated") or state.get("waiting"):
        return HealthStatus(tid, pname, PodStatus.FAILED, _not_running(main) or describe_pod(pod))
    if not pod_ready(pod):
        return HealthStatus(tid, pname, PodStatus.NOT_READY, describe_pod(pod))
    return HealthStatus(tid, pname, PodStatus.RUNNING, _restarts_note(pod))


def _not_running(status: Mapping[str, Any]) -> str:
    """Say why a container does not run: its exit, or what it waits for (with restarts, last exit)."""
    state = status.get("state") or {}
    name = status.get("name")
    terminated = state.get("terminated") or {}
    if terminated.get("exitCode") is not None:
        return f"container {name} exited with code {terminated['exitCode']}"
    reason = (state.get("waiting") or {}).get("reason")
    if not reason:
        return ""
    text = f"container {name} is waiting: {reason}"
    restarted = int(status.get("restartCount") or 0)
    last = (status.get("lastState") or {}).get("terminated") or {}
    if restarted:
        text += f", restarted {restarted} time(s)"
    if last.get("exitCode") is not None:
        text += f", last exit code {last['exitCode']}"
    return text


def _restarts_note(pod: Mapping[str, Any]) -> str:
    """Say which containers of a serving pod restarted, and how often ('' when none did)."""
    restarted = {k: v for k, v in restarts(pod).items() if v}
    return ", ".join(f"container {k} restarted {v} time(s)" for k, v in sorted(restarted.items()))


def health_of(
    pod: Mapping[str, Any], *, probe_url: Callable[[str], tuple[bool, str]] = probe
) -> HealthStatus:
    """Return the health of a pod: its status, and for a Ready pod the answer of its readiness URL."""
    health = status_health(pod)
    url = readiness_url(pod) if health.healthy else None
    if url:
        ok, detail = probe_url(url)
        if not ok:
            return HealthStatus(health.target_id, health.pod_name, PodStatus.NOT_READY, detail)
    return health
