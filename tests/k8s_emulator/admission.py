"""Pod Security admission: refuse a pod its namespace's ``enforce`` level forbids, as the API server does.

The level comes from the namespace label ``pod-security.kubernetes.io/enforce`` (none: privileged);
the checks and wording are the model's (:mod:`airflow_ais_etl.etl.podsecurity`), the answer is the
real 403 ``Forbidden`` Status. Only creation is checked (pod updates cannot change what is checked).
"""

from __future__ import annotations

from typing import Any

from airflow_ais_etl.etl.podsecurity import (
    ENFORCE_LABEL,
    ENFORCE_VERSION_LABEL,
    LEVELS,
    PRIVILEGED,
    forbidden_message,
    violations,
)
from tests.k8s_emulator.objects import ApiError

__all__ = ["admit_pod", "enforced_level"]


def enforced_level(namespace: dict[str, Any] | None) -> tuple[str, str]:
    """Return the namespace's enforced level and version (``privileged``/``latest`` when unlabelled)."""
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    level = labels.get(ENFORCE_LABEL) or PRIVILEGED
    return (level if level in LEVELS else PRIVILEGED), labels.get(ENFORCE_VERSION_LABEL) or "latest"


def admit_pod(namespace: dict[str, Any] | None, pod: dict[str, Any]) -> None:
    """Raise the API server's 403 when ``pod`` violates the level ``namespace`` enforces."""
    level, version = enforced_level(namespace)
    found = violations(pod, level)
    if found:
        name = str((pod.get("metadata") or {}).get("name", ""))
        raise ApiError(
            403, "Forbidden", forbidden_message(name, found, level, version), kind="pods", name=name
        )
