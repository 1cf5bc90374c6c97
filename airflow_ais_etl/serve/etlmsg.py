"""ETL messages in and out: AIS's init messages to a definition, and the service's answers to AIS's JSON.

In: the 2025 ``ETLSpecMsg`` (``runtime: {image, command, env}``, what the 2.x SDK's ``init`` and
``init_class`` send) and the older ``InitCodeMsg``/``InitSpecMsg`` (``code``/``spec`` base64). Out:
``ETLInfo`` (list), ``ETLDetails`` (view) and ``ETLNodeLogs`` as the SDK's models in
``aistore.sdk.types`` spell them. Pure functions: no I/O.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml

from airflow_ais_etl.etl.aisspec import spec_document
from airflow_ais_etl.etl.coerce import describe
from airflow_ais_etl.etl.definition import EtlDefinition
from airflow_ais_etl.etl.duration import format_duration
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.msg import CODE, InitCodeMsg, InitMsg, InitSpecMsg, from_wire
from airflow_ais_etl.etl.state import EtlState

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.base import PodLogs
    from airflow_ais_etl.service import EtlInfo

__all__ = ["details_of", "info_of", "logs_of", "parse_init"]

STAGES = {
    EtlState.RUNNING: "Running",
    EtlState.DEGRADED: "Running",
    EtlState.STOPPED: "Stopped",
    EtlState.ABORTED: "Aborted",
}
"""Our states as AIS's ETL stages (the SDK's ``list_etls`` filters on ``Running`` by default)."""


def parse_init(body: Any) -> tuple[str, EtlDefinition]:
    """Return the ETL name and definition of an init message (any of AIS's three shapes)."""
    if not isinstance(body, Mapping):
        raise ValidationError(f"invalid ETL init message: expected a JSON object, got {describe(body)}")
    if isinstance(body.get("runtime"), Mapping):  # ETLSpecMsg: the Pod AIS builds for an image
        doc = spec_document(body, env={})  # never expand the server's own environment into a pod
        if not doc.name:
            raise ValidationError("invalid ETLSpecMsg: the name is missing")
        return doc.name, EtlDefinition.from_mapping({**doc.options, "spec": doc.text}, kind="spec")
    wire = dict(body)
    if "id" not in wire and isinstance(wire.get("name"), str):
        wire["id"] = wire["name"]
    msg = from_wire(wire)
    common: dict[str, Any] = {
        "comm_type": msg.comm_type or None,
        "arg_type": msg.arg_type or None,
        "timeout": msg.timeout or None,
        "obj_timeout": msg.obj_timeout or None,
        "protocol": msg.protocol or None,
        "direct_put": msg.direct_put,
    }
    if isinstance(msg, InitCodeMsg):
        code = {
            "code": msg.code,
            "dependencies": msg.dependencies,
            "runtime": msg.runtime or None,
            "transform": msg.transform or None,
            "chunk_size": msg.chunk_size,
        }
        return msg.name, EtlDefinition.from_mapping({**common, **code}, kind=CODE)
    assert isinstance(msg, InitSpecMsg)
    return msg.name, EtlDefinition.from_mapping({**common, "spec": msg.spec}, kind="spec")


def info_of(info: EtlInfo) -> dict[str, Any]:
    """``ETLInfo``: name, stage, and the inline + offline counters."""
    stats = info.stats
    return {
        "id": info.name,
        "xaction_id": "",
        "stage": STAGES.get(EtlState(info.state), "Stopped"),
        "obj_count": int(stats.get("inline_objects", 0)) + int(stats.get("offline_objects", 0)),
        "in_bytes": int(stats.get("inline_bytes_in", 0)) + int(stats.get("offline_bytes_in", 0)),
        "out_bytes": int(stats.get("offline_bytes_out", 0)),
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _runtime_of(spec: str) -> dict[str, Any] | None:
    """Recover ``runtime: {image, command, env}`` from the Pod an ``ETLSpecMsg`` became (None if not one)."""
    try:
        pod = yaml.safe_load(spec)
        container = pod["spec"]["containers"][0]
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        return None
    runtime: dict[str, Any] = {"image": str(container.get("image", ""))}
    if container.get("command"):
        runtime["command"] = [str(c) for c in container["command"]]
    env = [e for e in container.get("env") or [] if isinstance(e, Mapping) and "value" in e]
    if env:
        runtime["env"] = [{"name": str(e["name"]), "value": str(e["value"])} for e in env]
    return runtime


def details_of(msg: InitMsg, obj_errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``ETLDetails``: the init message as AIS shows it, and a job's per-object errors."""
    init: dict[str, Any] = {
        "name": msg.name,
        "communication": msg.comm_type or "hpush://",
        "argument": msg.arg_type,
        "init_timeout": format_duration(msg.timeout),
        "obj_timeout": format_duration(msg.obj_timeout) if msg.obj_timeout else "45s",
        "support_direct_put": msg.direct_put,
    }
    if isinstance(msg, InitCodeMsg):
        init["code"] = _b64(msg.code)
        init["dependencies"] = None if msg.dependencies is None else _b64(msg.dependencies)
        init["runtime"] = msg.runtime
        init["chunk_size"] = msg.chunk_size
    elif isinstance(msg, InitSpecMsg):
        init["runtime"] = _runtime_of(msg.spec)
        init["spec"] = _b64(msg.spec)
    return {"init_msg": init, "obj_errors": obj_errors or None}


def logs_of(logs: list[PodLogs]) -> list[dict[str, str]]:
    """``ETLNodeLogs`` per target; AIS sends the log text base64-encoded."""
    return [{"target_id": entry.target_id, "logs": _b64(entry.logs)} for entry in logs]
