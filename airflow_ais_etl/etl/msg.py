"""Init messages: the two ways to define an ETL (code or pod spec) and their JSON form.

The wire format is the reference's (AIStore ``InitCodeMsg``/``InitSpecMsg``), so existing clients
and stored metadata keep working. Checking a message is :mod:`airflow_ais_etl.etl.validation`'s job.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_ais_etl.etl.duration import format_duration, parse_duration
from airflow_ais_etl.etl.errors import ValidationError, go_quote

__all__ = [
    "CODE",
    "DEFAULT_OBJ_TIMEOUT",
    "SPEC",
    "InitCodeMsg",
    "InitMsg",
    "InitSpecMsg",
    "decode_msg",
    "from_wire",
    "normalize_comm_type",
    "obj_timeout_of",
    "to_wire",
]

CODE = "code"
"""The kind of an ETL defined by code (as stored in ETL metadata)."""
SPEC = "spec"
"""The kind of an ETL defined by a Pod spec."""
_SEPARATOR = "://"
DEFAULT_OBJ_TIMEOUT = 45.0
"""Seconds one object may take when ``obj_timeout`` is 0 (AIS's CLI and SDK default, ``45s``)."""


def normalize_comm_type(value: str) -> str:
    """Accept the CLI/SDK short form: ``hpush`` → ``hpush://``; never append to an empty value.

    :param value: a comm type as a user typed it
    :return: the comm type with its ``://`` separator (``""`` stays ``""``)
    """
    value = value.strip()
    if not value or value.endswith(_SEPARATOR):
        return value
    return value + _SEPARATOR


@dataclass(frozen=True)
class InitMsg:
    """Fields shared by both init messages.

    :param name: ETL name (6–32 chars, ``[a-z0-9-]``, starting with a letter)
    :param comm_type: one of :data:`~airflow_ais_etl.etl.constants.COMM_TYPES`; empty means ``hpush://``
    :param arg_type: ``""`` (bytes), ``url`` or ``fqn``
    :param timeout: seconds to wait for each pod to become Ready; 0 means 45 s
    :param obj_timeout: seconds one object's transform may take, answer included (AIS's
        ``obj_timeout``); 0 means :data:`DEFAULT_OBJ_TIMEOUT`
    :param protocol: transformer protocol generation, ``2025`` (AIS 2.x, the default when empty) or
        ``2024``; it decides where an ``fqn`` goes (docs/protocol.md)
    :param direct_put: offline jobs ask the pod to PUT its result to the target itself
    """

    name: str
    comm_type: str = ""
    arg_type: str = ""
    timeout: float = 0.0
    obj_timeout: float = 0.0
    protocol: str = ""
    direct_put: bool = False

    @property
    def kind(self) -> str:
        """Return the message type as stored in ETL metadata (``code`` or ``spec``)."""
        return ""

    def __str__(self) -> str:
        return f"init[{self.name}-{self.comm_type}-{self.arg_type}]"


@dataclass(frozen=True)
class InitCodeMsg(InitMsg):
    """Define an ETL by Python code that the project's runtime image runs.

    :param code: module source text; must define the transform function
    :param dependencies: pip requirements text (``None`` and ``""`` both mean none)
    :param runtime: one of :data:`~airflow_ais_etl.etl.runtimes.RUNTIMES`
    :param transform: name of the transform function in ``code``
    :param chunk_size: 0 = whole object in memory, else stream in chunks of this many bytes
    :param flags: reserved bit flags, passed to the pod when > 0
    """

    code: str = ""
    dependencies: str | None = None
    runtime: str = ""
    transform: str = "transform"
    chunk_size: int = 0
    flags: int = 0

    @property
    def kind(self) -> str:
        """Return ``code``."""
        return CODE

    def __str__(self) -> str:
        return f"init-code[{self.name}-{self.comm_type}-{self.arg_type}-{self.runtime}]"


@dataclass(frozen=True)
class InitSpecMsg(InitMsg):
    """Define an ETL by a Pod manifest of any container that speaks the transformer protocol.

    :param spec: the manifest text, YAML or JSON
    """

    spec: str = ""

    @property
    def kind(self) -> str:
        """Return ``spec``."""
        return SPEC

    def __str__(self) -> str:
        return f"init-spec[{self.name}-{self.comm_type}-{self.arg_type}]"


# --------------------------------------------------------------------------------------------------
# wire format


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def to_wire(msg: InitMsg) -> dict[str, Any]:
    """Return the JSON-ready dict of a message (keys and order as the reference, §1.5).

    :param msg: an :class:`InitCodeMsg` or :class:`InitSpecMsg`
    :return: ``id, communication, argument, timeout`` then the kind's own fields; byte fields base64
    """
    out: dict[str, Any] = {
        "id": msg.name,
        "communication": msg.comm_type,
        "argument": msg.arg_type,
        "timeout": format_duration(msg.timeout),
    }
    if msg.obj_timeout:  # omitted when 0, as AIS does: older MD and fingerprints stay the same
        out["obj_timeout"] = format_duration(msg.obj_timeout)
    if msg.protocol:
        out["protocol"] = msg.protocol
    if msg.direct_put:
        out["support_direct_put"] = True
    if isinstance(msg, InitCodeMsg):
        out["code"] = _b64(msg.code)
        out["dependencies"] = None if msg.dependencies is None else _b64(msg.dependencies)
        out["runtime"] = msg.runtime
        out["funcs"] = {"transform": msg.transform}
        out["chunk_size"] = msg.chunk_size
        out["flags"] = msg.flags
    elif isinstance(msg, InitSpecMsg):
        out["spec"] = _b64(msg.spec)
    else:
        raise TypeError(f"expected InitCodeMsg or InitSpecMsg, got {type(msg).__name__}")
    return out


def _dump(data: Mapping[str, Any]) -> str:
    """Render a decoded object roughly as Go prints ``map[string]json.RawMessage``."""
    items = " ".join(f"{key}:{json.dumps(data[key], ensure_ascii=False)}" for key in sorted(data))
    text = f"map[{items}]"
    return text if len(text) <= 300 else text[:297] + "..."


def _lookup(data: Mapping[str, Any], key: str) -> Any:
    """Find a field like Go's JSON decoder: exact key first, then case-insensitively."""
    if key in data:
        return data[key]
    for candidate, value in data.items():
        if isinstance(candidate, str) and candidate.lower() == key:
            return value
    return None


def _bad(field: str, why: str) -> ValidationError:
    return ValidationError(f"invalid etl.InitMsg: field {go_quote(field)} {why}")


def _get_str(data: Mapping[str, Any], key: str) -> str:
    value = _lookup(data, key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(key, f"must be a string, got {type(value).__name__} {json.dumps(value)}")
    return value


def _get_int(data: Mapping[str, Any], key: str) -> int:
    value = _lookup(data, key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(key, f"must be an integer, got {json.dumps(value)}")
    return value


def _get_bool(data: Mapping[str, Any], key: str) -> bool:
    value = _lookup(data, key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(key, f"must be true or false, got {json.dumps(value)}")
    return value


def _get_b64_text(data: Mapping[str, Any], key: str) -> str | None:
    value = _lookup(data, key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(key, f"must be a base64 string, got {type(value).__name__}")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad(key, f"is not valid base64 ({exc}); encode the bytes with standard base64") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(key, f"does not decode as UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _get_timeout(data: Mapping[str, Any], key: str = "timeout") -> float:
    value = _lookup(data, key)
    if value is None:
        return 0.0
    if not isinstance(value, str):
        raise _bad(key, f'must be a duration string such as "45s" or "5m", got {json.dumps(value)}')
    return parse_duration(value)


def obj_timeout_of(msg: InitMsg) -> float:
    """Return the seconds one object of ``msg`` may take (its ``obj_timeout``, else the default)."""
    return msg.obj_timeout or DEFAULT_OBJ_TIMEOUT


def decode_msg(data: Mapping[str, Any], kind: str) -> InitMsg:
    """Decode a JSON object as the given message kind (used when the kind is known, e.g. from MD).

    :param data: the decoded JSON object
    :param kind: ``code`` or ``spec``
    :return: the message, not validated
    :raises ValidationError: on wrong field types, bad base64 or non-UTF-8 text
    """
    base: dict[str, Any] = {
        "name": _get_str(data, "id"),
        "comm_type": _get_str(data, "communication"),
        "arg_type": _get_str(data, "argument"),
        "timeout": _get_timeout(data),
        "obj_timeout": _get_timeout(data, "obj_timeout"),
        "protocol": _get_str(data, "protocol"),
        "direct_put": _get_bool(data, "support_direct_put"),
    }
    if kind == CODE:
        funcs = _lookup(data, "funcs")
        if funcs is None:
            transform = ""
        elif isinstance(funcs, Mapping):
            transform = _get_str(funcs, "transform")
        else:
            raise _bad(
                "funcs", f'must be an object like {{"transform": "transform"}}, got {json.dumps(funcs)}'
            )
        return InitCodeMsg(
            **base,
            code=_get_b64_text(data, "code") or "",
            dependencies=_get_b64_text(data, "dependencies"),
            runtime=_get_str(data, "runtime"),
            transform=transform,
            chunk_size=_get_int(data, "chunk_size"),
            flags=_get_int(data, "flags"),
        )
    if kind == SPEC:
        return InitSpecMsg(**base, spec=_get_b64_text(data, "spec") or "")
    raise ValidationError(f"invalid InitMsg type {go_quote(kind)}")


def from_wire(data: bytes | str | Mapping[str, Any]) -> InitMsg:
    """Decode an init message, telling the kinds apart as the reference does (§1.7).

    The exact key ``code`` wins (even when null, even next to ``spec``), then ``spec``; field names
    are otherwise matched case-insensitively (``Funcs`` and ``funcs`` both work).

    :param data: JSON text/bytes or an already decoded object
    :return: an :class:`InitCodeMsg` or :class:`InitSpecMsg`, not validated
    :raises ValidationError: when the input is not such a message
    """
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError(f"invalid etl.InitMsg: not UTF-8 JSON ({exc.reason})") from None
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"invalid etl.InitMsg: {exc}") from None
    if not isinstance(data, Mapping):
        raise ValidationError(
            f"invalid etl.InitMsg: expected a JSON object, got {type(data).__name__} {json.dumps(data)[:100]}"
        )
    if CODE in data:
        return decode_msg(data, CODE)
    if SPEC in data:
        return decode_msg(data, SPEC)
    raise ValidationError(f'invalid etl.InitMsg: {_dump(data)} (expecting a "code" or a "spec" field)')
