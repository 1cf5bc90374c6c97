"""A user's Pod spec: parse it (YAML or JSON) and check it against the transformer contract."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from airflow_ais_etl.etl.constants import IO
from airflow_ais_etl.etl.errors import ValidationError, go_quote

__all__ = ["affinity_problem", "main_container", "parse_pod_spec", "validate_pod_spec"]


def _yaml_error_text(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def parse_pod_spec(text: str | bytes, *, etl_name: str = "") -> dict[str, Any]:
    """Parse a Pod manifest (YAML or JSON; the first YAML document).

    :param text: the manifest
    :param etl_name: for the error context
    :return: the Pod as a dict
    :raises ValidationError: unparsable text (with line/column), not a mapping, not ``v1``/``Pod``
    """
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"failed to parse pod spec: not UTF-8 text ({exc.reason} at byte {exc.start})",
                etl_name=etl_name,
            ) from None
    obj: Any = None
    parsed = False
    if text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
            parsed = True
        except json.JSONDecodeError:
            parsed = False  # maybe a YAML flow mapping; YAML reports the error otherwise
    if not parsed:
        try:
            obj = next(iter(yaml.safe_load_all(text)), None)
        except yaml.YAMLError as exc:
            raise ValidationError(
                f"failed to parse pod spec: {_yaml_error_text(exc)}; fix the YAML (or JSON) manifest",
                etl_name=etl_name,
            ) from None
    fix = "; the spec must be one Pod manifest with apiVersion: v1 and kind: Pod"
    if obj is None:
        raise ValidationError(f"expected pod spec, got: empty document{fix}", etl_name=etl_name)
    if not isinstance(obj, dict):
        raise ValidationError(f"expected pod spec, got: {type(obj).__name__}{fix}", etl_name=etl_name)
    kind = obj.get("kind")
    if kind != "Pod":
        got = kind if isinstance(kind, str) and kind else "no kind"
        raise ValidationError(f"expected pod spec, got: {got}{fix}", etl_name=etl_name)
    api_version = obj.get("apiVersion")
    if api_version != "v1":
        raise ValidationError(
            f"expected pod spec, got: Pod with apiVersion {go_quote(str(api_version or ''))}{fix}",
            etl_name=etl_name,
        )
    return obj


def affinity_problem(spec: Mapping[str, Any]) -> str | None:
    """Return the reference's error for user node affinity / pod anti-affinity, or None."""
    affinity = spec.get("affinity") or {}
    if not isinstance(affinity, Mapping):
        return "spec.affinity must be a mapping"
    node = affinity.get("nodeAffinity") or {}
    if not isinstance(node, Mapping):
        return "spec.affinity.nodeAffinity must be a mapping"
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") if isinstance(required, Mapping) else None
    if terms or node.get("preferredDuringSchedulingIgnoredDuringExecution"):
        return (
            "error in YAML spec: pod should not have any NodeAffinities defined "
            "(remove spec.affinity.nodeAffinity: every ETL pod is pinned to its target's node)"
        )
    anti = affinity.get("podAntiAffinity") or {}
    if not isinstance(anti, Mapping):
        return "spec.affinity.podAntiAffinity must be a mapping"
    if anti.get("requiredDuringSchedulingIgnoredDuringExecution") or anti.get(
        "preferredDuringSchedulingIgnoredDuringExecution"
    ):
        return (
            "error in YAML spec, pod should not have any NodeAntiAffinities defined "
            "(remove spec.affinity.podAntiAffinity: placement is one pod per target node already)"
        )
    return None


def main_container(pod: Mapping[str, Any], etl_name: str) -> dict[str, Any]:
    """Return the Pod's only container (the transformer), or say why there is not exactly one."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        raise ValidationError(
            "pod spec has no spec section; add spec.containers with exactly one container", etl_name=etl_name
        )
    containers = spec.get("containers")
    count = len(containers) if isinstance(containers, list) else 0
    if not isinstance(containers, list) or count != 1:
        raise ValidationError(f"unsupported number of containers ({count}), expected: 1", etl_name=etl_name)
    container = containers[0]
    if not isinstance(container, dict):
        raise ValidationError("spec.containers[0] must be a mapping", etl_name=etl_name)
    return container


def validate_pod_spec(pod: Mapping[str, Any], comm_type: str, *, etl_name: str = "") -> None:
    """Check a user Pod against the transformer contract (reference §1.8, plus placement rules).

    :param pod: a parsed Pod (see :func:`parse_pod_spec`)
    :param comm_type: the ETL's comm type (io:// needs a container command)
    :param etl_name: for the error context
    :raises ValidationError: with the reference's texts where it has them
    """

    def fail(reason: str) -> ValidationError:
        return ValidationError(reason, etl_name=etl_name)

    container = main_container(pod, etl_name)
    spec = pod["spec"]
    name = container.get("name") or ""
    image = container.get("image")
    if not isinstance(image, str) or not image.strip():
        raise fail(f"container {go_quote(str(name))} has no image: set spec.containers[0].image")
    ports = container.get("ports")
    count = len(ports) if isinstance(ports, list) else 0
    if not isinstance(ports, list) or count != 1:
        raise fail(f"unsupported number of container ports ({count}), expected: 1")
    port = ports[0] if isinstance(ports[0], Mapping) else {}
    port_name = port.get("name")
    if port_name != "default":
        raise fail(f'expected port name: "default", got: {go_quote(str(port_name or ""))}')
    container_port = port.get("containerPort")
    if (
        isinstance(container_port, bool)
        or not isinstance(container_port, int)
        or not 0 < container_port < 65536
    ):
        raise fail(f"containerPort {container_port!r} is invalid: expecting an integer between 1 and 65535")
    probe = container.get("readinessProbe")
    if not probe:
        raise fail("readinessProbe section is required in a container spec")
    http_get = probe.get("httpGet") if isinstance(probe, Mapping) else None
    if not http_get:
        raise fail("httpGet missing in the readinessProbe")
    if not http_get.get("path"):
        raise fail("expected non-empty path for readinessProbe")
    if http_get.get("port") != "default":
        raise fail('readinessProbe port must be the "default" port')
    command = container.get("command")
    if command is not None and (
        not isinstance(command, list) or not all(isinstance(c, str) for c in command)
    ):
        raise fail("spec.containers[0].command must be a list of strings")
    if comm_type == IO and not command:
        raise fail(
            "io:// requires spec.containers[0].command: the io server runs it for every object "
            '(stdin = object, stdout = result); set e.g. command: ["python", "/app/transform.py"]'
        )
    problem = affinity_problem(spec)
    if problem:
        raise fail(problem)
    if spec.get("nodeName"):
        raise fail("spec.nodeName must not be set: every ETL pod is pinned to its target's node; remove it")
