"""Bucket grants per ETL and per job: the only buckets a target gateway serves to an ETL's pods.

Each ETL has its own gateway secret (the last segment of its pods' ``AIS_TARGET_URL``). Its grants
live in ``<grants dir>/<sha256(secret)>.json`` (0600)::

    {"etl": "<name>", "buckets": {"<bucket id>": {"url": "...", "jobs": {"<job id>": {"pid": P, "start": S}}}}}

A job adds itself to the buckets it reads when it starts and removes itself when it ends (also on
failure); a job whose process died without that (``kill -9``) stops counting at once, because the
gateway serves a bucket only while one of its jobs' processes (pid *and* start time, so a reused pid
does not count) still runs. Stopping the ETL deletes the file. Standard library only: the gateway
process reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from typing import Any

from airflow_ais_etl.cluster.private import locked, private_dir, write_private_json

__all__ = [
    "GrantReader",
    "add_grant",
    "create_grants",
    "drop_grants",
    "grants_file",
    "live_buckets",
    "process_start",
    "revoke_grant",
]


def grants_file(grants_dir: str, secret: str) -> str:
    """Return the file holding the grants of the ETL whose gateway secret is ``secret``."""
    return os.path.join(grants_dir, hashlib.sha256(secret.encode()).hexdigest() + ".json")


def process_start(pid: int) -> str | None:
    """Return when process ``pid`` started (clock ticks since boot), ``None`` when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19] if len(fields) > 19 and fields[0] != "Z" else None


@contextlib.contextmanager
def _update(grants_dir: str, secret: str) -> Any:
    path = grants_file(grants_dir, secret)
    with locked(os.path.join(grants_dir, ".lock")):
        data = _read(path)
        yield data
        if data is not None:
            write_private_json(path, data)


def _read(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    return data if isinstance(data, dict) else None


def create_grants(grants_dir: str, secret: str, etl: str) -> None:
    """Register ETL ``etl`` (no bucket granted yet) under its gateway ``secret``."""
    private_dir(grants_dir)
    write_private_json(grants_file(grants_dir, secret), {"etl": etl, "buckets": {}})


def add_grant(grants_dir: str, secret: str, bucket: str, url: str, job_id: str) -> None:
    """Let the ETL's pods read ``bucket`` (at ``url``) while job ``job_id`` (this process) runs."""
    start = process_start(os.getpid())
    with _update(grants_dir, secret) as data:
        if data is None:
            raise LookupError("the etl is not running (no grants file): start it first")
        entry = data["buckets"].setdefault(bucket, {"url": url, "jobs": {}})
        entry["url"] = url
        entry["jobs"][job_id] = {"pid": os.getpid(), "start": start}


def revoke_grant(grants_dir: str, secret: str, job_id: str) -> None:
    """End job ``job_id``'s grants; a bucket no running job reads is forgotten."""
    with _update(grants_dir, secret) as data:
        if data is None:
            return
        for name in list(data["buckets"]):
            jobs = data["buckets"][name]["jobs"]
            jobs.pop(job_id, None)
            for jid in [j for j, p in jobs.items() if not _alive(p)]:
                del jobs[jid]
            if not jobs:
                del data["buckets"][name]


def drop_grants(grants_dir: str, secret: str) -> None:
    """Forget every grant of the ETL (it stopped): its secret opens nothing any more."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(grants_file(grants_dir, secret))


def _alive(job: dict[str, Any]) -> bool:
    start = process_start(int(job.get("pid", 0)))
    return start is not None and start == job.get("start")


def live_buckets(data: dict[str, Any]) -> dict[str, str]:
    """Return ``{bucket id: url}`` of the buckets at least one running job of the ETL granted."""
    out = {}
    for name, entry in (data.get("buckets") or {}).items():
        if any(_alive(job) for job in (entry.get("jobs") or {}).values()):
            out[name] = entry["url"]
    return out


class GrantReader:
    """The gateway's view of the grants: re-read a file only when it changed on disk."""

    def __init__(self, grants_dir: str) -> None:
        self.grants_dir = grants_dir
        self._cache: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def lookup(self, secret: str) -> dict[str, Any] | None:
        """Return the grants of the ETL whose secret is ``secret`` (``None``: no such ETL)."""
        path = grants_file(self.grants_dir, secret)
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            cached = self._cache.get(path)
            if cached and cached[0] == key:
                return cached[1]
        try:
            data = _read(path)
        except (OSError, ValueError):
            return None
        if data is None:
            return None
        with self._lock:
            self._cache[path] = (key, data)
        return data
