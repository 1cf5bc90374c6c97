"""Pod options: resources, pull policy and secrets, tolerations, labels, annotations, identities.

One set of checks for both places these options come from: the ``ais_etl`` connection (every ETL's
pods) and one ETL's definition (``pod_options`` of the init operators, CLI flags, the Python API).
Pure (stdlib only): the model validates an ETL's options when its definition is built, and the
connection's parser when the connection is read, each naming the bad option and how to fix it.

An ETL's options override the connection's key by key; ``pod_labels`` and ``pod_annotations`` are
merged (the ETL's value wins for a key both set). :func:`parse_pod_options` returns the JSON form
stored with the ETL in its metadata, so a restart (``start``) rebuilds the same pods.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from airflow_ais_etl.etl.coerce import describe
from airflow_ais_etl.etl.errors import ValidationError

__all__ = [
    "MERGED_OPTIONS",
    "POD_OPTIONS",
    "PULL_POLICIES",
    "RESERVED_LABELS",
    "RESERVED_PREFIXES",
    "check_annotations",
    "check_dns_name",
    "check_labels",
    "check_pull_policy",
    "check_resources",
    "check_secret_names",
    "check_tolerations",
    "parse_pod_options",
    "parse_quantity",
]

PULL_POLICIES = ("IfNotPresent", "Always", "Never")
RESERVED_LABELS = frozenset(
    {"app", "app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/managed-by"}
    | {"app.kubernetes.io/instance"}
)
RESERVED_PREFIXES = ("nvidia.com/ais-etl-", "airflow-ais-etl/")
"""Keys the project sets itself (ETL selection, origin, io command): no option may override them."""
MERGED_OPTIONS = ("pod_labels", "pod_annotations")
"""Options whose per-ETL value is merged into the connection's (key by key) instead of replacing it."""

_QUANTITY = re.compile(r"^\+?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
_SUFFIX = {
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1)},
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate(("k", "M", "G", "T", "P", "E"))},
}
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(rf"^({_NAME})?$")
_TOLERATION_KEYS = frozenset({"key", "operator", "value", "effect", "tolerationSeconds"})
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def parse_quantity(text: Any) -> Decimal:
    """Return a resource quantity (``100m``, ``2Gi``, ``1.5``) as a number; ValueError names the syntax."""
    match = _QUANTITY.fullmatch(str(text).strip()) if isinstance(text, (str, int, float)) else None
    if match is None or isinstance(text, bool):
        raise ValueError(
            f"{text!r} is not a resource quantity: expecting a non-negative number with an optional "
            "suffix (m, k, M, G, Ki, Mi, Gi, ...), e.g. 100m or 256Mi"
        )
    suffix = match.group(3) or ""
    if suffix[:1] in ("e", "E"):
        return Decimal(match.group(1)) * Decimal(10) ** int(suffix[1:])
    return Decimal(match.group(1)) * _SUFFIX[suffix]


def check_dns_name(what: str, value: Any) -> str:
    """Return ``value`` if it is a DNS subdomain name (Secrets, service accounts, priority classes)."""
    if not isinstance(value, str) or len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a valid name: lower-case alphanumerics, '-' and '.'")
    return value


def check_secret_names(names: Any) -> tuple[str, ...]:
    """Return the image pull Secret names, each a valid name, duplicates dropped."""
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise ValueError(f"expecting a list of Secret names, got {describe(names)}")
    return tuple(dict.fromkeys(check_dns_name("image pull secret", n) for n in names))


def check_pull_policy(policy: Any) -> str:
    """Return ``policy`` if it is one of Kubernetes' image pull policies."""
    if policy not in PULL_POLICIES:
        raise ValueError(f"image pull policy must be one of {', '.join(PULL_POLICIES)}, got {policy!r}")
    return str(policy)


def _check_key(what: str, key: Any, *, reserved: bool = True) -> None:
    if not isinstance(key, str):
        raise ValueError(f"{what} key {key!r} must be text")
    prefix, _, name = key.rpartition("/")
    if not re.fullmatch(_NAME, name) or ("/" in key and not _DNS_SUBDOMAIN.fullmatch(prefix)):
        raise ValueError(f"{what} key {key!r} is not a valid [prefix/]name")
    if reserved and (key in RESERVED_LABELS or key.startswith(RESERVED_PREFIXES)):
        raise ValueError(
            f"{what} key {key!r} is set by airflow-ais-etl itself and may not be overridden "
            f"(reserved: {', '.join(sorted(RESERVED_LABELS))} and the prefixes {', '.join(RESERVED_PREFIXES)})"
        )


def _mapping(what: str, value: Any) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be an object of text values, got {describe(value)}")
    return value


def check_labels(labels: Any, *, reserved: bool = True) -> dict[str, str]:
    """Return extra pod labels: valid keys and values, none of the project's own unless not ``reserved``.

    :param reserved: refuse the project's own keys (labels we set); False for labels that select
        objects of others (a NetworkPolicy's workers)
    """
    for key, value in _mapping("labels", labels).items():
        _check_key("label", key, reserved=reserved)
        if not isinstance(value, str) or not _LABEL_VALUE.fullmatch(value):
            raise ValueError(f"label {key!r} has an invalid value {value!r}: up to 63 of [A-Za-z0-9-_.]")
    return dict(labels)


def check_annotations(annotations: Any) -> dict[str, str]:
    """Return extra pod annotations: valid keys, none of the project's own."""
    for key, value in _mapping("annotations", annotations).items():
        _check_key("annotation", key)
        if isinstance(value, (Mapping, list, tuple)) or value is None:
            raise ValueError(f"annotation {key!r} must have a text value, got {describe(value)}")
    return {k: str(v) for k, v in annotations.items()}


def check_resources(resources: Any) -> dict[str, Any]:
    """Return ``{"requests": {...}, "limits": {...}}`` with valid quantities, no request above its limit."""
    if not isinstance(resources, Mapping):
        raise ValueError(f"expecting an object with requests and/or limits, got {describe(resources)}")
    unknown = sorted(map(str, set(resources) - {"requests", "limits"}))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))}: expecting requests and/or limits")
    out: dict[str, dict[str, str]] = {}
    for part, values in resources.items():
        if not isinstance(values, Mapping):
            raise ValueError(f"{part} must be an object of resource quantities, got {values!r}")
        for res, qty in values.items():
            try:
                parse_quantity(qty)
            except ValueError as exc:
                raise ValueError(f"{part}.{res}: {exc}") from None
        out[part] = {str(k): str(v).strip() for k, v in values.items()}
    for res, qty in out.get("requests", {}).items():
        limit = out.get("limits", {}).get(res)
        if limit is not None and parse_quantity(qty) > parse_quantity(limit):
            raise ValueError(f"requests.{res} {qty} exceeds limits.{res} {limit}")
    return out


def _check_toleration(i: int, tol: Any) -> dict[str, Any]:
    if not isinstance(tol, Mapping):
        raise ValueError(f"toleration {i} must be an object, got {tol!r}")
    unknown = sorted(map(str, set(tol) - _TOLERATION_KEYS))
    if unknown:
        raise ValueError(f"toleration {i} has unknown key(s) {', '.join(map(repr, unknown))}")
    operator = tol.get("operator", "Equal")
    if operator not in ("Equal", "Exists"):
        raise ValueError(f"toleration {i}: operator must be Equal or Exists, got {operator!r}")
    if operator == "Exists" and tol.get("value"):
        raise ValueError(f"toleration {i}: operator Exists takes no value")
    if not tol.get("key") and operator != "Exists":
        raise ValueError(f"toleration {i}: an empty key needs operator Exists")
    if tol.get("effect", "") not in ("", *_EFFECTS):
        raise ValueError(f"toleration {i}: effect must be one of {', '.join(_EFFECTS)}")
    seconds = tol.get("tolerationSeconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int)):
        raise ValueError(f"toleration {i}: tolerationSeconds must be a whole number")
    if seconds is not None and tol.get("effect") != "NoExecute":
        raise ValueError(f"toleration {i}: tolerationSeconds needs effect NoExecute")
    for key in ("key", "value"):
        if not isinstance(tol.get(key, ""), str):
            raise ValueError(f"toleration {i}: {key} must be text")
    return dict(tol)


def check_tolerations(tolerations: Any) -> tuple[dict[str, Any], ...]:
    """Return the tolerations, each with only Kubernetes' keys and consistent operator/value/effect."""
    if isinstance(tolerations, (str, Mapping)) or not isinstance(tolerations, (list, tuple)):
        raise ValueError(f"expecting a list of toleration objects, got {describe(tolerations)}")
    return tuple(_check_toleration(i, t) for i, t in enumerate(tolerations))


POD_OPTIONS: dict[str, Any] = {
    "resources": check_resources,
    "image_pull_policy": check_pull_policy,
    "image_pull_secrets": check_secret_names,
    "tolerations": check_tolerations,
    "pod_labels": check_labels,
    "pod_annotations": check_annotations,
    "service_account_name": lambda v: check_dns_name("service account", v),
    "priority_class_name": lambda v: check_dns_name("priority class", v),
}
"""Every pod option and its check (which raises ValueError and returns the normalised value)."""


def _json_safe(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def parse_pod_options(raw: Any, what: str = "pod_options") -> dict[str, Any]:
    """Return one ETL's pod options, checked and in JSON form (None values dropped).

    :param raw: an object (or its JSON text, as a template renders it) of :data:`POD_OPTIONS` keys
    :raises ValidationError: an unknown option (the error lists the known ones), a wrong type, a
        bad quantity, label or name
    """
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            raise ValidationError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{what} must be an object of pod options, got {describe(raw)}")
    unknown = sorted(str(k) for k in raw if k not in POD_OPTIONS)
    if unknown:
        raise ValidationError(
            f"unknown {what} key(s) {', '.join(map(repr, unknown))}; the known ones are {', '.join(POD_OPTIONS)}"
        )
    out = {}
    for key, value in raw.items():
        if value is None:
            continue
        try:
            out[key] = _json_safe(POD_OPTIONS[key](value))
        except ValueError as exc:
            raise ValidationError(f"{what}.{key}: {exc}") from None
    return out
