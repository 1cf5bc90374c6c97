"""Local pods share this machine's network: give each its own address, and check who answers on it.

In Kubernetes every pod has its own network namespace, so a server that binds ``0.0.0.0`` (every
AIS ``pod.yaml`` does) owns the port only inside its pod. Local pods are processes on one machine,
each with its own loopback address (``127.x.y.z``). Two mechanisms keep them apart:

* :func:`own_address` rewrites ``0.0.0.0`` in a container's command and env to the pod's address
  (``--host 0.0.0.0``, ``--bind 0.0.0.0:8000``, ``-l 0.0.0.0``), which is what ``0.0.0.0`` means
  inside a pod;
* :func:`pod_site_env` does the same for Python programs that bind ``0.0.0.0`` in their code (AIS's
  transformer servers do), through ``podsite/sitecustomize.py``;
* :func:`listener_problem` checks, before a pod counts as ready, that the socket answering on its
  address and port belongs to that pod's own processes. A server that binds ``0.0.0.0`` in its code
  would otherwise take every other pod's traffic, and a second pod that cannot bind would be
  "ready" through the first one's process.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["WILDCARDS", "listener_problem", "own_address", "pod_site_env", "wildcard_listener"]

WILDCARDS = ("0.0.0.0", "::", "")
_ANY = re.compile(r"(?<![\d.])0\.0\.0\.0(?![\d.])")


def own_address(text: str, ip: str) -> str:
    """Return ``text`` with every ``0.0.0.0`` (as an address, not inside a longer one) replaced by ``ip``."""
    return _ANY.sub(ip, text)


def pod_site_env(ip: str, pythonpath: str) -> dict[str, str]:
    """Return the env that makes Python programs of a local pod bind ``0.0.0.0`` as the pod's ``ip``.

    ``podsite/sitecustomize.py`` goes first on ``PYTHONPATH``; the pod's own entries follow.
    """
    site = str(Path(__file__).with_name("podsite"))
    return {
        "PYTHONPATH": os.pathsep.join(p for p in (site, pythonpath) if p),
        "AIS_ETL_LOCAL_POD_IP": ip,
    }


def _belongs(pid: int | None, roots: set[int]) -> bool:
    """Tell whether ``pid`` is one of ``roots`` or descends from one (asked of the process itself, so a
    worker forked a moment ago counts too)."""
    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        return pid in roots or any(parent.pid in roots for parent in proc.parents())
    except psutil.Error:
        return False


def _describe(pid: int | None) -> str:
    if pid is None:
        return "a process of another user"
    try:
        cmd = " ".join(psutil.Process(pid).cmdline())[:120]
    except psutil.Error:
        cmd = "?"
    return f"process {pid} ({cmd})"


def listener_problem(ip: str, port: int, pod_pids: Iterable[int]) -> str | None:
    """Return why the listener on ``ip:port`` is not this pod's, or None when it is.

    The kernel hands a connection to the most specific listener: one bound to ``ip`` itself, else
    one bound to a wildcard address. That listener must belong to the pod's process tree.

    :param pod_pids: the pod's top-level processes (container shims); their descendants count too
    """
    roots = set(pod_pids)
    exact: list[tuple[int | None, str]] = []
    wildcard: list[tuple[int | None, str]] = []
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError) as exc:
        return f"cannot list listening sockets to check the pod's own server ({exc})"
    for c in conns:
        if c.status != psutil.CONN_LISTEN or not c.laddr or c.laddr.port != port:
            continue
        addr = c.laddr.ip
        if addr == ip or addr == f"::ffff:{ip}":
            exact.append((c.pid, addr))
        elif addr in WILDCARDS:
            wildcard.append((c.pid, addr))
    chosen = exact or wildcard
    if not chosen:
        return None  # nothing listens (yet): the probe itself fails and says so
    if any(_belongs(pid, roots) for pid, _ in chosen):
        return None
    pid, addr = chosen[0]
    where = f"{addr or '*'}:{port}"
    return (
        f"port {port} on {ip} is answered by {_describe(pid)}, which binds {where} — not by this pod's "
        f"own processes. Local pods share this machine's network, each on its own address: bind the "
        f"server to $(POD_IP) (env POD_IP) instead of 0.0.0.0 in code, or pass the address on the "
        f"command line (e.g. --host 0.0.0.0, which the local backend maps to the pod's address)"
    )


def wildcard_listener(port: int) -> str | None:
    """Describe the process that listens on ``port`` of every address (``0.0.0.0``/``::``), if any."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.laddr.ip in WILDCARDS:
            return f"{_describe(c.pid)} listens on {c.laddr.ip or '*'}:{port}"
    return None
