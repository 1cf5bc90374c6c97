"""Keep the ETL state every worker shares in one ConfigMap, ``ais-etl-md``, with optimistic concurrency.

The ConfigMap's data holds JSON documents: ``md`` (the :class:`~airflow_ais_etl.etl.md.EtlMD`),
``aborted`` (ETL name to abort cause), ``stopped`` (ETL name to who stopped it), ``stats`` (ETL
name to counters) and ``leases`` (:mod:`~airflow_ais_etl.etl.leases`). The edits are pure
functions of that data; :class:`ConfigMapState` reads, applies one and writes back with the
resourceVersion it read, retrying when another writer came first (409).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.kubernetes.objects import LABEL_MANAGED_BY, MANAGED_BY
from airflow_ais_etl.cluster.kubernetes.pods import KubeConflict
from airflow_ais_etl.etl.errors import EtlError
from airflow_ais_etl.etl.md import EtlMD

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_ais_etl.cluster.kubernetes.pods import KubeClient

__all__ = [
    "MD_CONFIGMAP",
    "ConfigMapLeases",
    "ConfigMapState",
    "add_stats",
    "config_map_body",
    "forget",
    "json_key",
    "set_abort",
]

MD_CONFIGMAP = "ais-etl-md"
_RETRIES = 20


def json_key(data: Mapping[str, str], key: str) -> dict[str, Any]:
    """Return the JSON object stored under ``key`` (empty when missing or not an object)."""
    try:
        value = json.loads(data.get(key) or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _put(data: dict[str, str], key: str, value: Mapping[str, Any]) -> None:
    data[key] = json.dumps(value, sort_keys=True)


def set_abort(data: dict[str, str], name: str, cause: str | None, key: str = "aborted") -> None:
    """Record why ``name`` was aborted (``key`` "stopped": who stopped it), or with None forget both."""
    for k in (key,) if cause is not None else ("aborted", "stopped"):
        causes = json_key(data, k)
        if cause is None:
            causes.pop(name, None)
        else:
            causes[name] = cause
        _put(data, k, causes)


def add_stats(data: dict[str, str], name: str, delta: Mapping[str, int]) -> None:
    """Add ``delta`` to the counters of ``name``."""
    stats = json_key(data, "stats")
    mine = stats.setdefault(name, {})
    for k, v in delta.items():
        mine[k] = int(mine.get(k, 0)) + int(v)
    _put(data, "stats", stats)


def forget(data: dict[str, str], name: str) -> None:
    """Drop the abort record and the stats of ``name``."""
    for key in ("aborted", "stopped", "stats"):
        values = json_key(data, key)
        values.pop(name, None)
        _put(data, key, values)


def config_map_body(namespace: str, data: Mapping[str, str], resource_version: str | None) -> dict[str, Any]:
    """Return the ConfigMap to write; with a resourceVersion the write fails if someone wrote since."""
    metadata: dict[str, Any] = {
        "name": MD_CONFIGMAP,
        "namespace": namespace,
        "labels": {LABEL_MANAGED_BY: MANAGED_BY},
    }
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": dict(data)}


class ConfigMapState:
    """The shared ETL state of one namespace, stored in the ConfigMap :data:`MD_CONFIGMAP`."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube

    def data(self) -> tuple[dict[str, str], dict[str, Any] | None]:
        """Return the ConfigMap's data and the ConfigMap itself (None when it does not exist)."""
        cm = self.kube.read_config_map(MD_CONFIGMAP)
        return (dict((cm or {}).get("data") or {}), cm)

    def update(self, change: Callable[[dict[str, str]], object]) -> dict[str, str]:
        """Apply ``change`` to the data with optimistic concurrency (retry on 409); return the data."""
        for attempt in range(_RETRIES):
            data, cm = self.data()
            change(data)
            try:
                if cm is None:
                    self.kube.create_config_map(config_map_body(self.kube.namespace, data, None))
                else:
                    rv = cm["metadata"]["resourceVersion"]
                    self.kube.replace_config_map(config_map_body(self.kube.namespace, data, rv))
            except KubeConflict:
                time.sleep(min(0.01 * (attempt + 1), 0.2))
                continue
            return data
        raise EtlError(
            f"configmap {self.kube.namespace}/{MD_CONFIGMAP} kept changing: gave up after {_RETRIES} tries"
        )

    def read_md(self) -> EtlMD:
        text = self.data()[0].get("md", "")
        return EtlMD.from_json(text) if text else EtlMD()

    def update_md(self, change: Callable[[EtlMD], object]) -> EtlMD:
        result: list[EtlMD] = []

        def apply(data: dict[str, str]) -> None:
            md = EtlMD.from_json(data["md"]) if data.get("md") else EtlMD()
            change(md)
            data["md"] = md.to_json()
            result[:] = [md]

        self.update(apply)
        return result[0]

    def record_abort(self, name: str, cause: str | None, key: str = "aborted") -> None:
        """Remember why ``name`` was aborted (or stopped, ``key``); None forgets both (no-op: no write)."""
        data = self.data()[0]
        if cause is None and all(name not in json_key(data, k) for k in ("aborted", "stopped")):
            return
        self.update(lambda data: set_abort(data, name, cause, key))

    def aborted_cause(self, name: str, key: str = "aborted") -> str | None:
        cause = json_key(self.data()[0], key).get(name)
        return str(cause) if cause else None

    def read_leases(self) -> dict[str, Any]:
        return json_key(self.data()[0], "leases")

    def update_leases(self, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
        result: list[dict[str, Any]] = []

        def apply(data: dict[str, str]) -> None:
            leases = json_key(data, "leases")
            change(leases)
            _put(data, "leases", leases)
            result[:] = [leases]

        self.update(apply)
        return result[0]

    def add_stats(self, name: str, delta: Mapping[str, int]) -> None:
        self.update(lambda data: add_stats(data, name, delta))

    def stats(self, name: str) -> dict[str, int]:
        mine = json_key(self.data()[0], "stats").get(name) or {}
        return {str(k): int(v) for k, v in mine.items()}

    def forget(self, name: str) -> None:
        self.update(lambda data: forget(data, name))


class ConfigMapLeases:
    """The lease methods of the Kubernetes backend: the ``leases`` key of its :class:`ConfigMapState`."""

    store: ConfigMapState

    def read_leases(self) -> dict[str, Any]:
        return self.store.read_leases()

    def update_leases(self, change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
        return self.store.update_leases(change)
