"""Options a spec file declares, merged with the options a caller gives explicitly.

A runtime spec's fields (``communication``, ``init_timeout``, ...) are defaults that an explicit
option overrides, as ``ais etl init -f spec.yaml --comm-type hpull`` does. A Pod annotation
(``communication_type``, ``wait_timeout``, ``support_direct_put``) that disagrees with an explicit
option is an error: the annotation is part of the manifest the user wrote, so one of the two is a
mistake and running either silently would be wrong.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import yaml

from airflow_ais_etl.etl.aisspec import (
    COMM_ANNOTATION,
    DIRECT_PUT_ANNOTATION,
    WAIT_ANNOTATION,
    SpecDocument,
    load_spec_documents,
    pod_annotation_options,
)
from airflow_ais_etl.etl.duration import format_duration
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.msg import normalize_comm_type

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_ais_etl.etl.msg import InitSpecMsg

__all__ = ["apply_pod_annotations", "merge_declared", "spec_document_of"]

_ANNOTATION_OF = {
    "comm_type": COMM_ANNOTATION,
    "timeout": WAIT_ANNOTATION,
    "direct_put": DIRECT_PUT_ANNOTATION,
}


def spec_document_of(text: str) -> SpecDocument:
    """Return the one ETL document of ``text``; unparsable text is kept for the pod checks to report.

    :raises ValidationError: several documents (one definition is one ETL), or a document that is
        neither a runtime spec nor a Pod
    """
    try:
        docs = load_spec_documents(text)
    except ValidationError as exc:
        if str(exc).startswith(("failed to decode YAML", "expected an ETL runtime spec", "empty YAML")):
            return SpecDocument(name="", pod={}, text=text)  # validation reports it with the Pod rules
        raise
    if len(docs) > 1:
        names = ", ".join(d.name or "?" for d in docs)
        raise ValidationError(
            f"the spec holds {len(docs)} ETL documents ({names}); an ETL definition takes one: split the "
            "file, or init them all with `ais-etl init -f FILE`"
        )
    return docs[0]


def _same(key: str, a: Any, b: Any) -> bool:
    if key == "comm_type":
        return bool(normalize_comm_type(str(a)) == normalize_comm_type(str(b)))
    if key in ("timeout", "obj_timeout"):
        return float(a) == float(b)
    return bool(a == b)


def _show(key: str, value: Any) -> str:
    if key in ("timeout", "obj_timeout"):
        return format_duration(float(value))
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _conflict(key: str, explicit: Any, declared: Any) -> ValidationError:
    annotation = _ANNOTATION_OF[key]
    return ValidationError(
        f"{key} {_show(key, explicit)!r} conflicts with the Pod's annotation {annotation}: "
        f"{_show(key, declared)!r}; remove the annotation or the option, or make them agree"
    )


def merge_declared(document: SpecDocument, explicit: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``explicit`` completed by what ``document`` declares (see the module docstring)."""
    out = dict(explicit)
    for key, value in document.options.items():
        if key not in explicit:
            out[key] = value
        elif document.kind == "pod" and not _same(key, explicit[key], value):
            raise _conflict(key, explicit[key], value)
    return out


def apply_pod_annotations(msg: InitSpecMsg) -> InitSpecMsg:
    """Fill an init-spec message's unset comm type and timeout from its Pod's annotations.

    For messages that did not come through a definition (the wire, hand-built messages): an
    annotation is never ignored; one that disagrees with a set field is an error.
    """
    try:
        pod = yaml.safe_load(msg.spec) if msg.spec else None
    except yaml.YAMLError:
        return msg  # the pod checks report it
    if not isinstance(pod, dict):
        return msg
    declared = pod_annotation_options(pod)
    changes: dict[str, Any] = {}
    for key, field_name, unset in (("comm_type", "comm_type", ""), ("timeout", "timeout", 0.0)):
        if key not in declared:
            continue
        current = getattr(msg, field_name)
        if current == unset:
            changes[field_name] = declared[key]
        elif not _same(key, current, declared[key]):
            raise _conflict(key, current, declared[key]).with_context(etl_name=msg.name)
    return dataclasses.replace(msg, **changes) if changes else msg
