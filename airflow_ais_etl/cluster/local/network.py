"""The network side of local pods: a loopback address of their own, and HTTP readiness probes."""

from __future__ import annotations

import random
import socket
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["free_loopback_ip", "probe_http", "readiness_url"]


def free_loopback_ip(port: int, attempts: int = 50) -> str:
    """Return a random 127.x.y.z address on which ``port`` is free (each pod gets its own)."""
    for _ in range(attempts):
        ip = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        with socket.socket() as s:
            try:
                s.bind((ip, port))
            except OSError:
                continue
        return ip
    from airflow_ais_etl.cluster.local.podnet import wildcard_listener
    from airflow_ais_etl.etl.errors import PodStartError

    owner = wildcard_listener(port)
    why = f": {owner}, which takes the port on every local address" if owner else ""
    raise PodStartError(
        f"no free loopback address for port {port} after {attempts} attempts{why}; stop that process, or "
        "give the pod another containerPort (local pods share this machine's network)"
    )


def probe_http(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    """Run an httpGet readiness probe: ready on any 2xx/3xx; return ``(ready, detail)``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 400, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return False, str(exc)


def readiness_url(pod: Mapping[str, Any], ip: str) -> str | None:
    """Return the URL of container 0's httpGet readiness probe (named or numeric port)."""
    containers = pod.get("spec", {}).get("containers") or []
    if not containers:
        return None
    probe = (containers[0].get("readinessProbe") or {}).get("httpGet")
    if not probe:
        return None
    port = probe.get("port")
    if isinstance(port, str) and not port.isdigit():
        ports = {p.get("name"): p["containerPort"] for p in containers[0].get("ports") or []}
        port = ports.get(port)
    path = probe.get("path") or "/"
    return f"http://{ip}:{port}{path if path.startswith('/') else '/' + path}"
