"""Pod knobs of the ``ais_etl`` connection: resources, pull secrets, tolerations, labels and more.

Pure (no Kubernetes or Airflow import): the connection's parser validates the knobs with the same
checks the backend applies, so a bad value fails when the connection is read, naming the extra,
instead of as an API error at pod creation. :func:`apply_knobs` adds them to a built pod; what the
ETL's own pod spec sets wins, since it is the more specific choice.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "DEFAULT_RESOURCES",
    "SIDECAR_RESOURCES",
    "PodKnobs",
    "apply_knobs",
    "check_annotations",
    "check_dns_name",
    "check_labels",
    "check_resources",
    "check_secret_names",
    "check_tolerations",
    "parse_quantity",
]

DEFAULT_RESOURCES: dict[str, Any] = {"requests": {"cpu": "100m", "memory": "128Mi"}}
"""Requests without limits: the pods are Burstable (not first evicted as BestEffort) and may use more."""
SIDECAR_RESOURCES: dict[str, Any] = {"requests": {"cpu": "10m", "memory": "64Mi"}}
"""Fixed requests of the gateway sidecar (a small proxy), so it never makes the pod BestEffort."""

RESERVED_LABELS = frozenset(
    {"app", "app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/managed-by"}
    | {"app.kubernetes.io/instance"}
)
RESERVED_PREFIXES = ("nvidia.com/ais-etl-", "airflow-ais-etl/")
"""Keys the project sets itself (ETL selection, origin, io command): the connection may not override them."""

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


def check_dns_name(what: str, value: str) -> str:
    """Return ``value`` if it is a DNS subdomain name (Secrets, service accounts, priority classes)."""
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a valid name: lower-case alphanumerics, '-' and '.'")
    return value


def check_secret_names(names: Any) -> tuple[str, ...]:
    """Return the image pull Secret names, each a valid name, duplicates dropped."""
    return tuple(dict.fromkeys(check_dns_name("image pull secret", str(n)) for n in names))


def _check_key(what: str, key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if not re.fullmatch(_NAME, name) or ("/" in key and not _DNS_SUBDOMAIN.fullmatch(prefix)):
        raise ValueError(f"{what} key {key!r} is not a valid [prefix/]name")
    if key in RESERVED_LABELS or key.startswith(RESERVED_PREFIXES):
        raise ValueError(
            f"{what} key {key!r} is set by airflow-ais-etl itself and may not be overridden "
            f"(reserved: {', '.join(sorted(RESERVED_LABELS))} and the prefixes {', '.join(RESERVED_PREFIXES)})"
        )


def check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Return extra pod labels: valid keys and values, none of the project's own."""
    for key, value in labels.items():
        _check_key("label", key)
        if not _LABEL_VALUE.fullmatch(value):
            raise ValueError(f"label {key!r} has an invalid value {value!r}: up to 63 of [A-Za-z0-9-_.]")
    return dict(labels)


def check_annotations(annotations: Mapping[str, str]) -> dict[str, str]:
    """Return extra pod annotations: valid keys, none of the project's own."""
    for key in annotations:
        _check_key("annotation", key)
    return {k: str(v) for k, v in annotations.items()}


def check_resources(resources: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``{"requests": {...}, "limits": {...}}`` with valid quantities, no request above its limit."""
    unknown = sorted(set(resources) - {"requests", "limits"})
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
    unknown = sorted(set(tol) - _TOLERATION_KEYS)
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
    return tuple(_check_toleration(i, t) for i, t in enumerate(tolerations))


@dataclass(frozen=True)
class PodKnobs:
    """What the connection adds to every ETL pod (each value already checked)."""

    resources: Mapping[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_RESOURCES))
    image_pull_secrets: tuple[str, ...] = ()
    tolerations: tuple[dict[str, Any], ...] = ()
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    service_account_name: str | None = None
    priority_class_name: str | None = None

    @classmethod
    def checked(cls, **knobs: Any) -> PodKnobs:
        """Return knobs from backend arguments (None: the default), raising ValueError when invalid."""
        out = cls()
        checks: dict[str, Any] = {
            "resources": check_resources,
            "image_pull_secrets": check_secret_names,
            "tolerations": check_tolerations,
            "pod_labels": check_labels,
            "pod_annotations": check_annotations,
            "service_account_name": lambda v: check_dns_name("service account", v),
            "priority_class_name": lambda v: check_dns_name("priority class", v),
        }
        unknown = sorted(set(knobs) - set(checks))
        if unknown:
            raise TypeError(f"unknown pod knob(s) {', '.join(unknown)}; known: {', '.join(checks)}")
        values = {k: checks[k](v) for k, v in knobs.items() if v is not None}
        return cls(**{**out.__dict__, **values})


def apply_knobs(pod: dict[str, Any], knobs: PodKnobs, sidecar: str) -> None:
    """Add ``knobs`` to ``pod`` in place; the pod spec's own values win, the sidecar gets fixed requests."""
    meta, spec = pod["metadata"], pod["spec"]
    if knobs.pod_labels:
        meta["labels"] = {**knobs.pod_labels, **(meta.get("labels") or {})}
    if knobs.pod_annotations:
        meta["annotations"] = {**knobs.pod_annotations, **(meta.get("annotations") or {})}
    for container in spec.get("containers") or []:
        if knobs.resources and not container.get("resources"):
            container["resources"] = copy.deepcopy(dict(knobs.resources))
    for container in spec.get("initContainers") or []:
        if container.get("name") == sidecar and not container.get("resources"):
            container["resources"] = copy.deepcopy(SIDECAR_RESOURCES)
    if knobs.image_pull_secrets:
        have = list(spec.get("imagePullSecrets") or [])
        names = {s.get("name") for s in have}
        spec["imagePullSecrets"] = have + [{"name": n} for n in knobs.image_pull_secrets if n not in names]
    if knobs.tolerations:
        spec["tolerations"] = list(spec.get("tolerations") or []) + [dict(t) for t in knobs.tolerations]
    if knobs.service_account_name:
        spec.setdefault("serviceAccountName", knobs.service_account_name)
    if knobs.priority_class_name:
        spec.setdefault("priorityClassName", knobs.priority_class_name)
