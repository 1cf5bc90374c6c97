"""The ``ais_etl`` connection: its extras, parsed into settings, and its UI form description.

Pure (no Airflow import), so ``get_provider_info`` can describe the form without importing a hook.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BACKENDS",
    "CONN_FIELDS",
    "CONN_TYPE",
    "UI_FIELD_BEHAVIOUR",
    "AisEtlSettings",
    "format_link",
    "parse_extras",
    "ui_field_behaviour",
]

CONN_TYPE = "ais_etl"
BACKENDS = ("local", "kubernetes")
_PREFIX = f"extra__{CONN_TYPE}__"

CONN_FIELDS: dict[str, dict[str, Any]] = {
    "backend": {
        "label": "Backend",
        "description": "local (embedded cluster of local processes, the default) or kubernetes",
        "schema": {"type": ["string", "null"], "enum": [*BACKENDS, None], "default": "local"},
    },
    "home": {
        "label": "Local cluster home",
        "description": "State directory of the local backend (default: $AIS_ETL_HOME or a per-user dir)",
        "schema": {"type": ["string", "null"]},
    },
    "kubernetes_conn_id": {
        "label": "Kubernetes connection id",
        "description": "cncf-kubernetes connection used by the kubernetes backend",
        "schema": {"type": ["string", "null"]},
    },
    "namespace": {"label": "Namespace", "schema": {"type": ["string", "null"]}},
    "node_selector": {
        "label": "Target node selector",
        "description": 'Nodes that act as targets, as JSON ({"role": "ais"}) or k=v,k2=v2',
        "schema": {"type": ["string", "null"]},
    },
    "link_template": {
        "label": "ETL link template",
        "description": "URL of the ETL's dashboard; {etl_name} is replaced",
        "schema": {"type": ["string", "null"]},
    },
}
"""``conn-fields`` of the connection type (the React UI reads these from provider info)."""

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["host", "schema", "login", "password", "port", "extra"],
    "relabeling": {},
    "placeholders": {
        "backend": "local",
        "link_template": "https://grafana.example/d/etl?var-etl={etl_name}",
        "node_selector": '{"node-role.kubernetes.io/ais-target": "true"}',
    },
}
"""``ui-field-behaviour`` of the connection type, in provider-info (kebab-case) form."""


def ui_field_behaviour() -> dict[str, Any]:
    """Return :data:`UI_FIELD_BEHAVIOUR` in the snake-case form of ``BaseHook.get_ui_field_behaviour``."""
    return {
        "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
        "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
        "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
    }


@dataclass(frozen=True)
class AisEtlSettings:
    """What an ``ais_etl`` connection configures (the defaults describe a fresh install)."""

    backend: str = "local"
    home: str | None = None
    kubernetes_conn_id: str | None = None
    namespace: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    link_template: str | None = None


def _text(extras: Mapping[str, Any], key: str) -> str | None:
    value = extras.get(key)
    if value is None:
        value = extras.get(_PREFIX + key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError(f"connection extra {key!r} must be a string, got {type(value).__name__}")
    return value.strip() or None


def _node_selector(extras: Mapping[str, Any]) -> dict[str, str]:
    raw = extras.get("node_selector", extras.get(_PREFIX + "node_selector"))
    if raw is None or raw == "" or raw == {}:
        return {}
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("{"):
            try:
                raw = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"connection extra 'node_selector' is not valid JSON: {exc}") from exc
        else:
            pairs = [p.strip() for p in text.split(",") if p.strip()]
            parsed = {}
            for pair in pairs:
                key, sep, value = pair.partition("=")
                if not sep or not key.strip():
                    raise ValueError(f"connection extra 'node_selector': expected key=value, got {pair!r}")
                parsed[key.strip()] = value.strip()
            raw = parsed
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
        raise TypeError("connection extra 'node_selector' must be a mapping of label keys to values")
    return {k: str(v) for k, v in raw.items()}


def parse_extras(extras: Mapping[str, Any] | None) -> AisEtlSettings:
    """Turn a connection's extras into :class:`AisEtlSettings`; raise ValueError/TypeError when invalid.

    Keys may carry the legacy ``extra__ais_etl__`` form prefix.
    """
    extras = extras or {}
    backend = (_text(extras, "backend") or "local").lower()
    if backend not in BACKENDS:
        raise ValueError(f"connection extra 'backend' must be one of {', '.join(BACKENDS)}, got {backend!r}")
    template = _text(extras, "link_template")
    if template is not None:
        format_link(template, "probe-etl")
    return AisEtlSettings(
        backend=backend,
        home=_text(extras, "home"),
        kubernetes_conn_id=_text(extras, "kubernetes_conn_id"),
        namespace=_text(extras, "namespace"),
        node_selector=_node_selector(extras),
        link_template=template,
    )


def format_link(template: str, etl_name: str) -> str:
    """Fill ``{etl_name}`` into a link template; raise ValueError for any other placeholder."""
    try:
        return template.format(etl_name=etl_name)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"connection extra 'link_template' {template!r} may only use the {{etl_name}} placeholder ({exc!r})"
        ) from exc
