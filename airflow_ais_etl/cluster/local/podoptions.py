"""What an ETL's pod options mean on the local backend: labels and annotations, nothing else.

Local pods are processes: resources, pull policy and secrets, tolerations, service accounts and
priority classes have nothing to act on. They are accepted (the same definition runs on both
backends) and named once per start in the log as ignored, so nobody believes they took effect.
Labels and annotations land in each pod's ``pod.yaml``, as the Airflow origin does.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["local_pod_meta"]

log = logging.getLogger(__name__)

_APPLIED = ("pod_labels", "pod_annotations")


def local_pod_meta(
    etl_name: str,
    labels: Mapping[str, str] | None,
    annotations: Mapping[str, str] | None,
    pod_options: Mapping[str, Any] | None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Return the labels and annotations of the local pods; log the options that are ignored here."""
    options = dict(pod_options or {})
    ignored = sorted(k for k in options if k not in _APPLIED)
    if ignored:
        log.warning(
            "etl %s: pod option(s) %s have no meaning on the local backend and are ignored",
            etl_name,
            ", ".join(ignored),
        )
    return (
        {**options.get("pod_labels", {}), **(labels or {})},
        {**options.get("pod_annotations", {}), **(annotations or {})},
    )
