"""The on-disk state of the embedded local cluster: a directory that any process can share.

Layout under the home directory (``AIS_ETL_HOME``; 0700, every file 0600, see :mod:`~airflow_ais_etl.cluster.private`)::

    cluster.json            {"version": N, "targets": {"t1": {"node": "local-t1"}, ...}}
    md.json                 the ETL metadata (EtlMD JSON)
    leases.json             who uses which ETL now (see :mod:`~airflow_ais_etl.etl.leases`)
    state.lock              flock taken by every read-modify-write
    targets/<tid>/gateway.json, gateway.log
    etls/<name>/<tid>/      one pod: pod.yaml (materialised spec), pod.json (processes), logs/, volumes/
    etls/<name>/aborted     why the ETL was aborted (read by running jobs' membership watches)
    etls/<name>/stopping    present while the ETL is being stopped (watches name the stop, not pod exits)
    etls/<name>/membership.json  the targets its pods started on (what watches compare against)
    etls/<name>/stats.json  aggregated job statistics
    etls/<name>/secrets.json  the ETL's pod token and gateway secret (0600)
    grants/<sha256>.json    buckets an ETL's running jobs granted it (read by the gateways)
    deps/<sha>/             installed dependencies, shared by every pod with the same requirements
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.private import (
    ensure_private_home,
    locked,
    write_private,
)

if TYPE_CHECKING:
    import contextlib

DEFAULT_TARGETS = 2


def default_home() -> Path:
    """Return ``$AIS_ETL_HOME`` or a per-user data directory."""
    if env := os.environ.get("AIS_ETL_HOME"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "airflow-ais-etl"


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (0600) so that readers see the old or the new content, never a mix."""
    write_private(path, text)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


class LocalState:
    """Paths and atomic JSON documents of one local cluster home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        ensure_private_home(home)

    @property
    def cluster_file(self) -> Path:
        return self.home / "cluster.json"

    @property
    def md_file(self) -> Path:
        return self.home / "md.json"

    @property
    def leases_file(self) -> Path:
        return self.home / "leases.json"

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return locked(self.home / "state.lock")

    def pods_lock(self, *, shared: bool) -> contextlib.AbstractContextManager[None]:
        """Starting pods holds it shared; stopping idle gateways holds it exclusively."""
        return locked(self.home / "pods.lock", shared=shared)

    def any_pods(self) -> bool:
        return any((self.home / "etls").glob("*/*/pod.json"))

    def target_dir(self, tid: str) -> Path:
        return self.home / "targets" / tid

    def etl_dir(self, name: str) -> Path:
        return self.home / "etls" / name

    def pod_dir(self, name: str, tid: str) -> Path:
        return self.etl_dir(name) / tid

    def aborted_file(self, name: str) -> Path:
        return self.etl_dir(name) / "aborted"

    def stopping_file(self, name: str) -> Path:
        return self.etl_dir(name) / "stopping"

    def secrets_file(self, name: str) -> Path:
        """The ETL's pod token and gateway secret (0600, see :mod:`~airflow_ais_etl.cluster.local.etlsecrets`)."""
        return self.etl_dir(name) / "secrets.json"

    def grants_dir(self) -> Path:
        """Per-ETL bucket grants the gateways read (see :mod:`~airflow_ais_etl.cluster.grants`)."""
        return self.home / "grants"

    def deps_dir(self, key: str) -> Path:
        return self.home / "deps" / key

    def cluster(self) -> dict[str, Any]:
        data: dict[str, Any] = read_json(self.cluster_file, {"version": 0, "targets": {}})
        return data

    def etl_names(self) -> list[str]:
        root = self.home / "etls"
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []
