"""Measure pods' CPU and memory from their real process trees, as metrics-server reports them."""

from __future__ import annotations

import contextlib
import threading
import time

import psutil


def process_tree(pid: int) -> list[psutil.Process]:
    """Return ``pid`` and all its descendants that still exist."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


class UsageSampler:
    """Turn cumulative CPU time into a rate (nanocores) between successive samples."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[int, tuple[float, float]] = {}

    def usage(self, pid: int) -> tuple[int, int] | None:
        """Return ``(nanocores, memory bytes)`` of the tree rooted at ``pid``, None when it is gone."""
        procs = process_tree(pid)
        if not procs:
            return None
        cpu = 0.0
        rss = 0
        created = time.time()
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                cpu += times.user + times.system + times.children_user + times.children_system
                rss += proc.memory_info().rss
                created = min(created, proc.create_time())
        now = time.time()
        with self._lock:
            last_wall, last_cpu = self._last.get(pid, (created, 0.0))
            self._last[pid] = (now, cpu)
        elapsed = max(now - last_wall, 1e-3)
        nanocores = max(int((cpu - last_cpu) / elapsed * 1e9), 0)
        return nanocores, rss


def cpu_quantity(nanocores: int) -> str:
    """Format CPU like metrics-server (``"123456n"``)."""
    return f"{nanocores}n"


def memory_quantity(rss: int) -> str:
    """Format memory like metrics-server (``"12345Ki"``)."""
    return f"{rss // 1024}Ki"
