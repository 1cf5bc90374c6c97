"""CPU and memory of local pods: CPU as a rate (cores) over a short sampling window.

An instant ``cpu_percent`` reading of a fresh ``psutil.Process`` is always 0, so the CPU seconds of
every process of a pod are read twice, :data:`SAMPLE_SECONDS` apart, and the difference is divided
by the wall time between the reads (one window for all pods of the ETL).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

import psutil

from airflow_ais_etl.cluster.base import PodMetrics
from airflow_ais_etl.cluster.local.processes import process_tree

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_ais_etl.cluster.local.processes import LocalPod

__all__ = ["SAMPLE_SECONDS", "cpu_cores", "pod_metrics"]

SAMPLE_SECONDS = 0.25


def cpu_cores(before: Mapping[int, float], after: Mapping[int, float], seconds: float) -> float:
    """Return the cores used between two readings of CPU seconds per pid (pids in both only)."""
    if seconds <= 0:
        return 0.0
    used = sum(max(0.0, after[pid] - before[pid]) for pid in after.keys() & before.keys())
    return used / seconds


def _cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            times = p.cpu_times()
            out[p.pid] = times.user + times.system
    return out


def _rss(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def pod_metrics(pods: Mapping[str, LocalPod], window: float = SAMPLE_SECONDS) -> list[PodMetrics]:
    """Return the CPU (cores, averaged over ``window`` seconds) and resident memory of each pod."""
    procs = {tid: process_tree(pod) for tid, pod in pods.items()}
    started = time.monotonic()
    before = {tid: _cpu_seconds(ps) for tid, ps in procs.items()}
    time.sleep(window)
    after = {tid: _cpu_seconds(ps) for tid, ps in procs.items()}
    seconds = time.monotonic() - started
    return [
        PodMetrics(tid, pod.name, round(cpu_cores(before[tid], after[tid], seconds), 3), _rss(procs[tid]))
        for tid, pod in pods.items()
    ]
