"""The ``ais_etl`` connection's one schema: every setting, its form field, its parser, its backend.

Each field of :class:`AisEtlSettings` declares its default, kind, label, help, example and backend
once; from that come the parser of the connection extras (:func:`parse_extras`), the connection form
of provider info (:data:`CONN_FIELDS`, :data:`UI_FIELD_BEHAVIOUR`) and the keyword arguments of the
Kubernetes backend (:meth:`AisEtlSettings.kubernetes_backend_kwargs`).

Pure (no Airflow import), so ``get_provider_info`` can describe the form without importing a hook.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from functools import partial
from typing import Any

from airflow_ais_etl.cluster.kubernetes.addressing import ADDRESS_MODES
from airflow_ais_etl.cluster.kubernetes.claims import check_volume_claims
from airflow_ais_etl.cluster.kubernetes.netpolicy import NetworkPolicyConfig
from airflow_ais_etl.cluster.kubernetes.podknobs import DEFAULT_RESOURCES
from airflow_ais_etl.etl.podoptions import (
    PULL_POLICIES,
    check_annotations,
    check_dns_name,
    check_labels,
    check_resources,
    check_secret_names,
    check_tolerations,
)
from airflow_ais_etl.hooks.setting_kinds import (
    Checked,
    Choice,
    Flag,
    Integer,
    Json,
    Labels,
    PathList,
    Seconds,
    SettingKind,
    Text,
)

__all__ = [
    "ADDRESS_MODES",
    "BACKENDS",
    "CONN_FIELDS",
    "CONN_TYPE",
    "FORM_PREFIX",
    "UI_FIELD_BEHAVIOUR",
    "AisEtlSettings",
    "SettingSpec",
    "format_link",
    "parse_extras",
    "setting_fields",
    "spec_of",
    "ui_field_behaviour",
]

CONN_TYPE = "ais_etl"
BACKENDS = ("local", "kubernetes")
FORM_PREFIX = f"extra__{CONN_TYPE}__"
"""Prefix the legacy connection form gives every extra (``extra__ais_etl__namespace``)."""

_SECTIONS = {"local": "Local backend", "kubernetes": "Kubernetes backend"}
_SPEC = "ais_etl_setting"


@dataclass(frozen=True)
class SettingSpec:
    """How one setting is parsed and shown in the connection form.

    :param kind: the value's kind (parser and form widget)
    :param label: the form field's title
    :param help: one sentence under the field: what the setting does and its default
    :param example: a typical value, shown as the placeholder (and suggestion) of the field
    :param backend: the backend that uses the setting; None for both
    :param masked: Airflow treats the name as sensitive (``secret``, ``service_account``): the API shows its
        form value as ``***``, so a fresh form starts it at null, not at a blank that would be saved
        as ``***``
    """

    kind: SettingKind
    label: str
    help: str
    example: str = ""
    backend: str | None = None
    masked: bool = False


def _setting(
    default: Any,
    kind: SettingKind,
    label: str,
    help: str,
    *,
    example: str = "",
    backend: str | None = None,
    masked: bool = False,
) -> Any:
    spec = SettingSpec(kind, label, help, example, backend, masked)
    if isinstance(default, dict):
        return field(default_factory=partial(copy.deepcopy, default), metadata={_SPEC: spec})
    return field(default=default, metadata={_SPEC: spec})


@dataclass(frozen=True)
class AisEtlSettings:
    """What an ``ais_etl`` connection configures (the defaults describe a fresh install)."""

    backend: str = _setting(
        "local",
        Choice(BACKENDS),
        "Backend",
        "Where ETL pods run: local (processes on this machine, the default) or kubernetes.",
    )
    link_template: str | None = _setting(
        None,
        Text(),
        "ETL link template",
        "URL of an ETL's dashboard for the task's link; {etl_name} is replaced. "
        "Default: the local backend's state directory.",
        example="https://grafana.example/d/etl?var-etl={etl_name}",
    )
    home: str | None = _setting(
        None,
        Text(),
        "Local cluster home",
        "State directory of the local backend. Default: $AIS_ETL_HOME, else a per-user directory.",
        example="/var/lib/ais-etl",
        backend="local",
    )
    kubernetes_conn_id: str = _setting(
        "kubernetes_default",
        Text(),
        "Kubernetes connection id",
        "The cncf-kubernetes connection that reaches the cluster.",
        backend="kubernetes",
    )
    namespace: str | None = _setting(
        None,
        Text(),
        "Namespace",
        "Namespace of every ETL pod, service and the metadata ConfigMap. "
        "Default: the Kubernetes connection's namespace, else default.",
        example="ais",
        backend="kubernetes",
    )
    node_selector: dict[str, str] = _setting(
        {},
        Labels(),
        "Target node selector",
        "Labels a Ready node needs to run ETL pods (one pod per matching node); "
        "an object, or key=value pairs separated by commas. Default: every Ready node.",
        example='{"airflow-ais-etl/target": "true"}',
        backend="kubernetes",
    )
    address: str = _setting(
        "pod-ip",
        Choice(ADDRESS_MODES),
        "Pod address",
        "How workers reach ETL pods: pod-ip (the pod's IP, the default) or service "
        "(<pod>.<namespace>.svc, needs cluster DNS).",
        backend="kubernetes",
    )
    scheduling_timeout: float = _setting(
        60.0,
        Seconds(),
        "Scheduling timeout (s)",
        "Seconds an ETL pod may stay unschedulable before its start fails. Default: 60.",
        example="120",
        backend="kubernetes",
    )
    stop_grace: int = _setting(
        10,
        Integer(0, 3600),
        "Stop grace period (s)",
        "Grace period given to ETL pods when they are deleted. Default: 10.",
        backend="kubernetes",
    )
    stop_timeout: float = _setting(
        30.0,
        Seconds(),
        "Stop timeout (s)",
        "Seconds to wait for graceful deletion before deleting ETL pods by force. Default: 30.",
        backend="kubernetes",
    )
    shared_paths: tuple[str, ...] = _setting(
        (),
        PathList(),
        "Shared paths",
        "Directories of this machine that ETL pods see at the same path (local buckets, fqn "
        "arguments, the bucket map), one per line. Default: none.",
        example="/mnt/datasets",
        backend="kubernetes",
    )
    mount_shared_paths: bool = _setting(
        True,
        Flag(),
        "Mount shared paths",
        "Mount the shared paths into ETL pods as hostPath volumes; turn off when something else "
        "makes them visible. hostPath is forbidden by the baseline and restricted Pod Security levels.",
        backend="kubernetes",
    )
    volume_claims: dict[str, Any] = _setting(
        {},
        Json("object", check_volume_claims),
        "Volume claims",
        "Existing PersistentVolumeClaims mounted in every ETL pod at a directory of this machine that "
        "holds the same files (local buckets, fqn arguments, the bucket map): an object of directory -> "
        'claim name, read-only; {"claim_name": ..., "read_only": false} for a writable one. Allowed by '
        "every Pod Security level, unlike shared paths. Default: none.",
        example='{"/mnt/datasets": "datasets-pvc"}',
        backend="kubernetes",
    )
    buckets_file: str | None = _setting(
        None,
        Text(),
        "Bucket map file",
        "Path of the gateway's bucket map; pods must see it at the same path. Default: under the "
        "first shared path or volume claim directory, else under the local state directory.",
        example="/mnt/datasets/.airflow-ais-etl/buckets.json",
        backend="kubernetes",
    )
    gateway_image: str | None = _setting(
        None,
        Text(),
        "Gateway image",
        "Image of the gateway sidecar in every ETL pod. Default: the ETL's runtime image.",
        example="registry.example/airflow-ais-etl/runtime-python:3.11",
        backend="kubernetes",
    )
    gateway_port: int = _setting(
        8081,
        Integer(1, 65535),
        "Gateway port",
        "Port of the gateway sidecar (moved up by one if the transformer uses it). Default: 8081.",
        backend="kubernetes",
    )
    gateway_secret_name: str | None = _setting(
        None,
        Text(),
        "Gateway secret",
        "A Secret in the namespace whose keys become the gateway sidecar's environment "
        "(object-store credentials). Default: none.",
        example="s3-credentials",
        backend="kubernetes",
        masked=True,
    )
    resources: dict[str, Any] = _setting(
        DEFAULT_RESOURCES,
        Json("object", check_resources),
        "Resources",
        "Requests and limits of each ETL server container (quantities such as 100m, 256Mi); the "
        "ETL's own pod spec wins. Default: requests cpu 100m, memory 128Mi, no limits (Burstable).",
        example='{"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}',
        backend="kubernetes",
    )
    image_pull_policy: str | None = _setting(
        None,
        Choice(PULL_POLICIES),
        "Image pull policy",
        "imagePullPolicy of the runtime and gateway containers (a Pod spec's own value wins): "
        "IfNotPresent, Always or Never. Default: IfNotPresent.",
        backend="kubernetes",
    )
    image_pull_secrets: tuple[str, ...] | None = _setting(
        None,
        Checked(PathList("name"), check_secret_names),
        "Image pull secrets",
        "Secrets in the namespace that pull ETL images from private registries, one per line. Default: none.",
        example="regcred",
        backend="kubernetes",
        masked=True,
    )
    tolerations: tuple[dict[str, Any], ...] = _setting(
        (),
        Json("array", check_tolerations),
        "Tolerations",
        "Tolerations of ETL pods (objects with key, operator, value, effect, tolerationSeconds), "
        "e.g. to run on tainted storage nodes. Default: none.",
        example='[{"key": "dedicated", "operator": "Equal", "value": "ais", "effect": "NoSchedule"}]',
        backend="kubernetes",
    )
    pod_labels: dict[str, str] = _setting(
        {},
        Checked(Labels(), check_labels),
        "Pod labels",
        "Extra labels of ETL pods; the project's own labels (app, app.kubernetes.io/*, nvidia.com/ais-etl-*, "
        "airflow-ais-etl/*) are refused. Default: none.",
        example='{"team": "data"}',
        backend="kubernetes",
    )
    pod_annotations: dict[str, str] = _setting(
        {},
        Checked(Labels(), check_annotations),
        "Pod annotations",
        "Extra annotations of ETL pods; airflow-ais-etl/* keys are refused. Default: none.",
        example='{"prometheus.io/scrape": "true"}',
        backend="kubernetes",
    )
    service_account_name: str | None = _setting(
        None,
        Checked(Text(), partial(check_dns_name, "service account")),
        "Service account",
        "Service account of ETL pods (unless the ETL's pod spec names one). Default: the namespace's default.",
        example="ais-etl",
        backend="kubernetes",
        masked=True,
    )
    priority_class_name: str | None = _setting(
        None,
        Checked(Text(), partial(check_dns_name, "priority class")),
        "Priority class",
        "PriorityClass of ETL pods (unless the ETL's pod spec names one). Default: the cluster's default.",
        example="high-priority",
        backend="kubernetes",
    )

    network_policy: bool = _setting(
        False,
        Flag(),
        "NetworkPolicy per ETL",
        "Create a NetworkPolicy with every ETL so that its pods accept traffic only from the Airflow "
        "workers (the two settings below) and from the ETL's own pods. Default: off.",
        backend="kubernetes",
    )
    network_policy_namespaces: dict[str, str] = _setting(
        {},
        Labels(),
        "Worker namespace labels",
        "Labels of the namespace(s) of the Airflow workers the NetworkPolicy lets in. Default: none.",
        example='{"kubernetes.io/metadata.name": "airflow"}',
        backend="kubernetes",
    )
    network_policy_pods: dict[str, str] = _setting(
        {},
        Labels(),
        "Worker pod labels",
        "Labels of the Airflow worker pods the NetworkPolicy lets in (in any namespace unless worker "
        "namespace labels are set too). Default: none.",
        example='{"component": "worker"}',
        backend="kubernetes",
    )

    def kubernetes_backend_kwargs(self) -> dict[str, Any]:
        """Return the ``KubernetesBackend`` keyword arguments: every setting of the kubernetes backend."""
        return {f.name: getattr(self, f.name) for f in setting_fields() if spec_of(f).backend == "kubernetes"}


def setting_fields() -> tuple[Field[Any], ...]:
    """Return the settings in form order (the fields of :class:`AisEtlSettings`)."""
    return fields(AisEtlSettings)


def spec_of(f: Field[Any]) -> SettingSpec:
    """Return how setting field ``f`` is parsed and shown."""
    spec: SettingSpec = f.metadata[_SPEC]
    return spec


def _default(f: Field[Any]) -> Any:
    if f.default_factory is not MISSING:
        return f.default_factory()
    return f.default


# --------------------------------------------------------------------------------------------------
# parsing


def _is_unset(value: Any) -> bool:
    """Tell whether a raw extra means "use the default" (the form writes blanks and nulls for it)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, (list, tuple, dict)) and not value


def _raw(extras: Mapping[str, Any], name: str) -> Any:
    """Return extra ``name``, plain or form-prefixed; both set to different values is an error."""
    plain, prefixed = extras.get(name), extras.get(FORM_PREFIX + name)
    if _is_unset(plain):
        return prefixed
    if not _is_unset(prefixed) and prefixed != plain:
        raise ValueError(
            f"connection extras {name!r} and {FORM_PREFIX + name!r} disagree ({plain!r} vs {prefixed!r}): "
            "keep one of them"
        )
    return plain


def _reject_unknown(extras: Mapping[str, Any]) -> None:
    names = [f.name for f in setting_fields()]
    known = {*names, *(FORM_PREFIX + n for n in names)}
    unknown = sorted(str(k) for k in extras if k not in known)
    if unknown:
        raise ValueError(
            f"unknown {CONN_TYPE} connection extra(s) {', '.join(map(repr, unknown))}; the known ones are "
            f"{', '.join(names)} (each may carry the form prefix {FORM_PREFIX})"
        )


def parse_extras(extras: Mapping[str, Any] | None) -> AisEtlSettings:
    """Turn a connection's extras into :class:`AisEtlSettings`; raise ValueError/TypeError when invalid.

    Keys may be plain (``namespace``, as Airflow 3's form and hand-written JSON store them) or carry
    the legacy form prefix (``extra__ais_etl__namespace``). Blank and null values mean the default.
    """
    extras = extras or {}
    if not isinstance(extras, Mapping):
        raise TypeError(f"{CONN_TYPE} connection extras must be a JSON object, got {type(extras).__name__}")
    _reject_unknown(extras)
    values = {}
    for f in setting_fields():
        raw = _raw(extras, f.name)
        if not _is_unset(raw):
            values[f.name] = spec_of(f).kind.parse(f.name, raw)
    settings = AisEtlSettings(**values)
    if settings.link_template is not None:
        format_link(settings.link_template, "probe-etl")
    try:
        NetworkPolicyConfig(
            settings.network_policy, settings.network_policy_namespaces, settings.network_policy_pods
        )
    except ValueError as exc:
        raise ValueError(f"connection extras network_policy*: {exc}") from None
    return settings


def format_link(template: str, etl_name: str) -> str:
    """Fill ``{etl_name}`` into a link template; raise ValueError for any other placeholder."""
    try:
        return template.format(etl_name=etl_name)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"connection extra 'link_template' {template!r} may only use the {{etl_name}} placeholder ({exc!r})"
        ) from exc


# --------------------------------------------------------------------------------------------------
# the connection form (provider info)


def _form_default(f: Field[Any]) -> Any:
    """Return the value a fresh form shows: the default, else the kind's blank (null only if masked)."""
    default = _default(f)
    if default is None:
        return None if spec_of(f).masked else spec_of(f).kind.blank()
    return list(default) if isinstance(default, tuple) else default


def _conn_field(f: Field[Any]) -> dict[str, Any]:
    spec = spec_of(f)
    schema = {**spec.kind.json_schema(), "default": _form_default(f)}
    if spec.example and isinstance(getattr(spec.kind, "kind", spec.kind), Text):
        schema["examples"] = [spec.example]
    if spec.backend is not None:
        schema["section"] = _SECTIONS[spec.backend]
    description = f"{spec.help} Example: {spec.example}" if spec.example else spec.help
    return {"label": spec.label, "description": description, "schema": schema}


CONN_FIELDS: dict[str, dict[str, Any]] = {f.name: _conn_field(f) for f in setting_fields()}
"""``conn-fields`` of the connection type: the form Airflow 3's UI renders (one field per setting)."""

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["host", "schema", "login", "password", "port"],
    "relabeling": {},
    "placeholders": {f.name: spec_of(f).example for f in setting_fields() if spec_of(f).example},
}
"""``ui-field-behaviour`` of the connection type, in provider-info (kebab-case) form.

The standard fields are hidden; the extras JSON stays visible for pasting a whole configuration.
"""


def ui_field_behaviour() -> dict[str, Any]:
    """Return :data:`UI_FIELD_BEHAVIOUR` in the snake-case form of ``BaseHook.get_ui_field_behaviour``."""
    return {
        "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden-fields"]),
        "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
        "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
    }
