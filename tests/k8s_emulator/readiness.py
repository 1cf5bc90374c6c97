"""Readiness probes of running containers: when each is due, and how many results flip it.

Only ``httpGet`` probes are run; a container without one is ready once it runs, as in Kubernetes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from airflow_ais_etl.cluster.local.network import probe_http, readiness_url

if TYPE_CHECKING:
    from tests.k8s_emulator.containers import ContainerState

__all__ = ["INJECTED_FAILURE", "probe_container"]

INJECTED_FAILURE = "HTTP probe failed with statuscode: 503 (failure injected by the emulator)"


def probe_container(
    c: ContainerState, ip: str, *, node_ready: bool, failing: bool, period_max: float | None
) -> tuple[bool, str | None]:
    """Probe a running container when its probe is due.

    :param failing: fail the probe without asking the container (a fault injected by a test)
    :param period_max: cap on ``periodSeconds`` (None honours it exactly)
    :return: whether the container's readiness changed, and why the probe failed (None: it did not)
    """
    probe = c.spec.get("readinessProbe") or {}
    url = readiness_url({"spec": {"containers": [c.spec]}}, ip) if probe.get("httpGet") else None
    if url is None:
        changed = not c.ready
        c.ready = True
        return changed, None
    if not node_ready or time.monotonic() < c.next_probe:
        return False, None
    if failing:
        ok, detail = False, INJECTED_FAILURE
    else:
        ok, detail = probe_http(url, timeout=float(probe.get("timeoutSeconds") or 1))
    period = float(probe.get("periodSeconds") or 10)
    c.next_probe = time.monotonic() + (period if period_max is None else min(period, period_max))
    if ok:
        c.successes, c.failures = c.successes + 1, 0
        if not c.ready and c.successes >= int(probe.get("successThreshold") or 1):
            c.ready = True
            return True, None
        return False, None
    c.successes, c.failures = 0, c.failures + 1
    if c.ready and c.failures >= int(probe.get("failureThreshold") or 3):
        c.ready = False
        return True, detail
    return False, detail
