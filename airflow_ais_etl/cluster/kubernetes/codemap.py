"""Keep an init-code ETL's code and requirements in one ConfigMap per ETL, not in every Pod.

The runtime still reads ``AISTORE_CODE``/``AISTORE_DEPS`` from its env, but each container gets
them by ``configMapKeyRef``: the text is stored once, is not repeated per container and target in
the Pod objects (and their etcd size), and anyone who can ``get pods`` sees only the ConfigMap's
name. The ConfigMap is labelled like the ETL's pods (minus the per-target labels), so stop, delete
and the pre-clean of a new start find and remove it by the ETL's selector, as the gateway Secret.

The kubelet still passes the values as env, so the model's per-variable limit (128 KiB, Linux's
``MAX_ARG_STRLEN``) keeps applying; the ConfigMap's own limit (1 MiB of data) is checked here too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.podspec import POD_LABEL_NAME, POD_LABEL_NODE, POD_LABEL_TARGET, pod_name
from airflow_ais_etl.etl.podtemplate import code_env

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_ais_etl.etl.msg import InitCodeMsg

__all__ = [
    "CODE_KEYS",
    "MAX_CONFIG_MAP_BYTES",
    "code_config_map",
    "code_config_map_name",
    "reference_code",
]

MAX_CONFIG_MAP_BYTES = 1_048_576  # the API server refuses ConfigMaps whose data exceeds 1 MiB
CODE_KEYS = {"AISTORE_CODE": "code", "AISTORE_DEPS": "deps"}  # env var -> ConfigMap key
_PER_POD_LABELS = (POD_LABEL_NAME, POD_LABEL_NODE, POD_LABEL_TARGET)


def code_config_map_name(etl_name: str) -> str:
    """Name the code ConfigMap of an ETL (a DNS label, like its pods' names)."""
    return pod_name(etl_name, "code")


def code_config_map(msg: InitCodeMsg, namespace: str, pod: Mapping[str, Any]) -> dict[str, Any]:
    """Return the ETL's code ConfigMap, labelled like ``pod`` minus the per-target labels.

    Raise :class:`ValidationError` naming the size and the limit when the data would not fit, so
    the ETL is refused before any object is created rather than by the API server half-way.
    """
    data = {CODE_KEYS[var]: value for var, value in code_env(msg).items()}
    size = sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) for k, v in data.items())
    if size > MAX_CONFIG_MAP_BYTES:
        raise ValidationError(
            f"source code and dependencies too large ({size} bytes): they travel in one ConfigMap, "
            f"limited to {MAX_CONFIG_MAP_BYTES} bytes; move bulky data out of the code "
            "(e.g. into the image or an object store)",
            etl_name=msg.name,
        )
    labels = {k: v for k, v in (pod["metadata"].get("labels") or {}).items() if k not in _PER_POD_LABELS}
    labels["app.kubernetes.io/component"] = "code"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": code_config_map_name(msg.name), "namespace": namespace, "labels": labels},
        "data": data,
    }


def reference_code(pod: dict[str, Any], etl_name: str) -> None:
    """Replace literal ``AISTORE_CODE``/``AISTORE_DEPS`` env values in every container by refs (in place)."""
    spec = pod["spec"]
    name = code_config_map_name(etl_name)
    for container in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        env = container.get("env") or []
        for i, entry in enumerate(env):
            key = CODE_KEYS.get(entry.get("name", ""))
            if key is not None:
                env[i] = {"name": entry["name"], "valueFrom": {"configMapKeyRef": {"name": name, "key": key}}}
