"""AIStore's spec files as AIS reads them: ``etl_spec.yaml`` runtime specs, Pod annotations, several documents.

A file given to ``ais etl init -f`` holds one or more YAML documents (``---``); each is either an
ETL *runtime spec* (AIS ``ETLSpecMsg``: ``name``, ``runtime: {image, command, env}``,
``communication``, ``argument``, ``init_timeout``, ``obj_timeout``, ``support_direct_put``, ...)
or a full Pod manifest whose annotations ``communication_type``, ``wait_timeout`` and
``support_direct_put`` set those options. Both become a :class:`SpecDocument`: a Pod manifest (a
runtime spec is turned into the Pod AIS would build for it) plus the options it declares, so the
rest of the project has one mechanism, the Pod-spec path. Placeholders are expanded first
(:mod:`~airflow_ais_etl.etl.placeholders`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from airflow_ais_etl.etl.coerce import describe
from airflow_ais_etl.etl.duration import parse_duration
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.msg import normalize_comm_type
from airflow_ais_etl.etl.placeholders import expand_placeholders
from airflow_ais_etl.etl.runtimes import is_runtime_image

__all__ = [
    "ANNOTATIONS",
    "RUNTIME_SPEC_KEYS",
    "SpecDocument",
    "load_spec_documents",
    "pod_annotation_options",
    "spec_document",
]

COMM_ANNOTATION = "communication_type"
WAIT_ANNOTATION = "wait_timeout"
DIRECT_PUT_ANNOTATION = "support_direct_put"
ANNOTATIONS = (COMM_ANNOTATION, WAIT_ANNOTATION, DIRECT_PUT_ANNOTATION)
"""The Pod annotations AIS reads (ext/etl ``CommTypeAnnotation`` and friends)."""

RUNTIME_SPEC_KEYS = (
    "name",
    "communication",
    "argument",
    "env",
    "init_timeout",
    "obj_timeout",
    "support_direct_put",
    "runtime",
    "resources",
)
"""Top-level fields of AIS's ``ETLSpecMsg`` (``argument`` from its 2025 releases)."""
_RUNTIME_KEYS = ("image", "command", "env")
DEFAULT_CONTAINER_PORT = 8000
"""The port AIS gives a runtime-spec container (``DefaultContainerPort``); its servers listen there."""
HEALTH_PATH = "/health"
LISTEN_PORT_ENV = "AIS_ETL_LISTEN_PORT"
"""The port our runtime server listens on (airflow_ais_etl.runtime.config)."""
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True)
class SpecDocument:
    """One ETL of a spec file: its Pod manifest and the options the document itself declares.

    :param name: the ETL name the document gives (``name:`` or the Pod's ``metadata.name``), or ``""``
    :param pod: the Pod manifest
    :param options: declared options among ``comm_type``, ``arg_type``, ``timeout``,
        ``obj_timeout`` (seconds) and ``direct_put``
    :param kind: ``runtime`` (an ``etl_spec.yaml`` document) or ``pod``
    :param text: the manifest as text to store (the original text when nothing was rewritten)
    """

    name: str
    pod: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    kind: str = "pod"
    text: str = ""


def _parse_documents(text: str) -> list[Any]:
    if text.lstrip().startswith("{"):
        try:
            return [json.loads(text)]
        except json.JSONDecodeError:
            pass  # maybe a YAML flow mapping
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValidationError(f"failed to decode YAML: {problem}{where}; fix the spec file") from None


def load_spec_documents(text: str, env: Mapping[str, str] | None = None) -> list[SpecDocument]:
    """Read every ETL document of a spec file (YAML, possibly several ``---`` documents, or JSON).

    :param text: the file's text
    :param env: variables for ``${VAR:-default}`` placeholders (default: this process's environment)
    :raises ValidationError: unparsable YAML, an empty file, or a document that is neither a
        runtime spec nor a Pod (the error names the document)
    """
    docs = _parse_documents(text)
    if not docs:
        raise ValidationError("empty YAML spec: expecting an ETL runtime spec or a Pod manifest")
    single = len(docs) == 1
    out = []
    for i, doc in enumerate(docs, 1):
        try:
            out.append(spec_document(doc, env, original=text if single else None))
        except ValidationError as exc:
            if single:
                raise
            raise ValidationError(f"document {i} of {len(docs)}: {exc}") from None
    return out


def spec_document(
    doc: Any, env: Mapping[str, str] | None = None, *, original: str | None = None
) -> SpecDocument:
    """Turn one parsed document into a :class:`SpecDocument` (placeholders expanded first).

    :param original: the document's own text, kept as :attr:`SpecDocument.text` when unchanged
    """
    if not isinstance(doc, Mapping):
        raise ValidationError(
            f"expected an ETL runtime spec or a Pod manifest (a mapping), got {describe(doc)}"
        )
    expanded = expand_placeholders(doc, os.environ if env is None else env)
    if "runtime" in expanded:
        return _runtime_document(expanded)
    if "spec" in expanded or "kind" in expanded or "apiVersion" in expanded:
        pod = dict(expanded)
        text = original if original is not None and expanded == doc else yaml.safe_dump(pod, sort_keys=False)
        meta = pod.get("metadata")
        name = meta.get("name") if isinstance(meta, Mapping) else None
        return SpecDocument(
            name=name if isinstance(name, str) else "",
            pod=pod,
            options=pod_annotation_options(pod),
            kind="pod",
            text=text,
        )
    keys = ", ".join(sorted(map(str, expanded))) or "none"
    raise ValidationError(
        f"unknown document (missing 'runtime' or 'spec'; its keys: {keys}): write an ETL runtime spec "
        "(name, runtime.image, communication, ...) or a Pod manifest (apiVersion: v1, kind: Pod, spec)"
    )


def _duration(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValidationError(f"{what} must be a duration such as 45s or 5m, got {describe(value)}")
    try:
        return parse_duration(value.strip())
    except ValidationError as exc:
        raise ValidationError(f"{what}: {exc}") from None


def _str(what: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {describe(value)}")
    return value


def _env_list(what: str, value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(e, Mapping) and e.get("name") for e in value):
        raise ValidationError(
            f"{what} must be a list of {{name: NAME, value: VALUE}} entries, got {describe(value)}"
        )
    out = []
    for e in value:
        if "value" in e and not isinstance(e["value"], str):
            raise ValidationError(
                f"{what}: the value of {e['name']!r} must be a string, got {describe(e['value'])} "
                f'(quote it: value: "{e["value"]}")'
            )
        out.append(dict(e))
    return out


def _runtime_document(doc: Mapping[str, Any]) -> SpecDocument:
    """Build the Pod AIS builds for an ``ETLSpecMsg`` and collect the options it declares."""
    unknown = sorted(str(k) for k in doc if k not in RUNTIME_SPEC_KEYS)
    if unknown:
        raise ValidationError(
            f"unknown field(s) {', '.join(unknown)} in ETL runtime spec (allowed: {', '.join(RUNTIME_SPEC_KEYS)})"
        )
    runtime = doc["runtime"]
    if not isinstance(runtime, Mapping):
        raise ValidationError(
            f"runtime must be a mapping with image, command and env, got {describe(runtime)}"
        )
    bad = sorted(str(k) for k in runtime if k not in _RUNTIME_KEYS)
    if bad:
        raise ValidationError(
            f"unknown field(s) {', '.join(bad)} in runtime (allowed: {', '.join(_RUNTIME_KEYS)})"
        )
    image = runtime.get("image")
    if not isinstance(image, str) or not image.strip():
        raise ValidationError("runtime.image must be specified (the transformer's container image)")
    command = runtime.get("command")
    if command is not None and (
        not isinstance(command, list) or not all(isinstance(c, str) for c in command)
    ):
        raise ValidationError(
            f'runtime.command must be a list of strings such as ["python", "server.py"], got {describe(command)}'
        )
    name = _str("name", doc.get("name") or "")
    container: dict[str, Any] = {
        "name": name or "server",
        "image": image,
        "imagePullPolicy": "Always",
        "ports": [{"name": "default", "containerPort": DEFAULT_CONTAINER_PORT}],
        "readinessProbe": {"httpGet": {"path": HEALTH_PATH, "port": "default"}},
    }
    if command:
        container["command"] = list(command)
    env = _env_list("runtime.env", runtime.get("env")) + _env_list("env", doc.get("env"))
    if is_runtime_image(image) and not any(e["name"] == LISTEN_PORT_ENV for e in env):
        # our runtime listens on 8080 unless told; the Pod AIS builds serves (and probes) port 8000
        env.append({"name": LISTEN_PORT_ENV, "value": str(DEFAULT_CONTAINER_PORT)})
    if env:
        container["env"] = env
    resources = doc.get("resources")
    if resources:
        if not isinstance(resources, Mapping):
            raise ValidationError(
                f"resources must be a mapping (requests, limits), got {describe(resources)}"
            )
        container["resources"] = dict(resources)
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name} if name else {},
        "spec": {"containers": [container]},
    }
    options: dict[str, Any] = {}
    if doc.get("communication") not in (None, ""):
        options["comm_type"] = normalize_comm_type(_str("communication", doc["communication"]))
    if doc.get("argument") is not None:
        options["arg_type"] = _str("argument", doc["argument"])
    if doc.get("init_timeout") is not None:
        options["timeout"] = _duration("init_timeout", doc["init_timeout"])
    if doc.get("obj_timeout") is not None:
        options["obj_timeout"] = _duration("obj_timeout", doc["obj_timeout"])
    if doc.get("support_direct_put") is not None:
        value = doc["support_direct_put"]
        if not isinstance(value, bool):
            raise ValidationError(f"support_direct_put must be true or false, got {describe(value)}")
        options["direct_put"] = value
    return SpecDocument(name, pod, options, "runtime", yaml.safe_dump(pod, sort_keys=False))


def pod_annotation_options(pod: Mapping[str, Any]) -> dict[str, Any]:
    """Return the options a Pod's AIS annotations declare (``comm_type``, ``timeout``, ``direct_put``).

    :raises ValidationError: an annotation AIS would refuse (not a string, bad duration or bool)
    """
    meta = pod.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    if not isinstance(annotations, Mapping):
        return {}
    options: dict[str, Any] = {}
    for key in ANNOTATIONS:
        value = annotations.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise ValidationError(
                f'annotation {key} must be a string, got {describe(value)}: quote it, e.g. {key}: "{value}"'
            )
        what = f"annotation {key}"
        if key == COMM_ANNOTATION:
            options["comm_type"] = normalize_comm_type(value)
        elif key == WAIT_ANNOTATION:
            options["timeout"] = _duration(what, value)
        elif value.strip() in _TRUE + _FALSE:
            options["direct_put"] = value.strip() in _TRUE
        else:
            raise ValidationError(f'{what} must be "true" or "false", got {value!r}')
    return options
