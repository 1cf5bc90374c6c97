"""Pod knobs: what the ``ais_etl`` connection and one ETL's ``pod_options`` add to every ETL pod.

Pure (no Kubernetes or Airflow import). The checks are the model's
(:mod:`airflow_ais_etl.etl.podoptions`), shared by the connection's parser and an ETL's definition,
so a bad value fails when the connection or the definition is read, naming the option, instead of
as an API error at pod creation. :meth:`PodKnobs.with_options` lays an ETL's options over the
connection's knobs; :func:`apply_knobs` adds them to a built pod, where what the ETL's own pod spec
sets wins, since it is the more specific choice.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.etl.podoptions import MERGED_OPTIONS, POD_OPTIONS

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DEFAULT_PULL_POLICY",
    "DEFAULT_RESOURCES",
    "SIDECAR_RESOURCES",
    "PodKnobs",
    "apply_knobs",
]

DEFAULT_RESOURCES: dict[str, Any] = {"requests": {"cpu": "100m", "memory": "128Mi"}}
"""Requests without limits: the pods are Burstable (not first evicted as BestEffort) and may use more."""
SIDECAR_RESOURCES: dict[str, Any] = {"requests": {"cpu": "10m", "memory": "64Mi"}}
"""Fixed requests of the gateway sidecar (a small proxy), so it never makes the pod BestEffort."""
DEFAULT_PULL_POLICY = "IfNotPresent"
"""Side-loaded images (kind, minikube, air-gapped mirrors) work; ``Always`` is a knob away."""


@dataclass(frozen=True)
class PodKnobs:
    """What the connection, or an ETL's options laid over it, add to every ETL pod (each value checked)."""

    resources: Mapping[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULT_RESOURCES))
    image_pull_policy: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    tolerations: tuple[dict[str, Any], ...] = ()
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    pod_annotations: Mapping[str, str] = field(default_factory=dict)
    service_account_name: str | None = None
    priority_class_name: str | None = None

    @classmethod
    def checked(cls, **knobs: Any) -> PodKnobs:
        """Return knobs from backend arguments (None: the default), raising ValueError when invalid."""
        unknown = sorted(set(knobs) - set(POD_OPTIONS))
        if unknown:
            raise TypeError(f"unknown pod knob(s) {', '.join(unknown)}; known: {', '.join(POD_OPTIONS)}")
        values = {k: POD_OPTIONS[k](v) for k, v in knobs.items() if v is not None}
        return replace(cls(), **values)

    def with_options(self, options: Mapping[str, Any] | None) -> PodKnobs:
        """Return these knobs overridden key by key by one ETL's (already checked) ``pod_options``.

        ``pod_labels`` and ``pod_annotations`` are merged, the ETL's value winning for a shared key;
        every other option given replaces the connection's value.
        """
        if not options:
            return self
        values = PodKnobs.checked(**options).__dict__
        given = {k: values[k] for k in options if options[k] is not None}
        for key in MERGED_OPTIONS:
            if key in given:
                given[key] = {**getattr(self, key), **given[key]}
        return replace(self, **given)


def _pull_policy(spec: dict[str, Any], knobs: PodKnobs, sidecar: str, ours: bool) -> None:
    """Set the image pull policy: on the sidecar, on every container of our template, else where unset."""
    policy = knobs.image_pull_policy or DEFAULT_PULL_POLICY
    for container in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        mine = ours or container.get("name") == sidecar
        if mine and (knobs.image_pull_policy or not container.get("imagePullPolicy")):
            container["imagePullPolicy"] = policy
        elif knobs.image_pull_policy and not container.get("imagePullPolicy"):
            container["imagePullPolicy"] = policy


def apply_knobs(pod: dict[str, Any], knobs: PodKnobs, sidecar: str, *, ours: bool = False) -> None:
    """Add ``knobs`` to ``pod`` in place; the pod spec's own values win, the sidecar gets fixed requests.

    :param ours: the pod comes from the project's runtime template (an init-code ETL), so a set
        ``image_pull_policy`` replaces the template's IfNotPresent too
    """
    meta, spec = pod["metadata"], pod["spec"]
    _pull_policy(spec, knobs, sidecar, ours)
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
