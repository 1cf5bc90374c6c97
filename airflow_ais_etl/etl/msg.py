"""Init messages: the two ways to define an ETL (code or pod spec), their JSON form and validation.

The wire format is the reference's (AIStore ``InitCodeMsg``/``InitSpecMsg``), so existing clients
and stored metadata keep working; validation follows the reference order and texts, with the fixes
documented on :func:`validate`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import keyword
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_ais_etl.etl.constants import (
    ARG_BYTES,
    ARG_FQN,
    ARG_TYPES,
    ARG_URL,
    COMM_TYPES,
    DEFAULT_TIMEOUT,
    HPULL,
    HPUSH,
    HREV,
    IO,
    MAX_CHUNK_SIZE,
    MAX_ENV_STRING,
    MAX_NAME_LEN,
    MIN_NAME_LEN,
)
from airflow_ais_etl.etl.duration import format_duration, parse_duration
from airflow_ais_etl.etl.errors import ValidationError, go_quote
from airflow_ais_etl.etl.podspec import parse_pod_spec, validate_pod_spec
from airflow_ais_etl.etl.runtimes import RUNTIMES

__all__ = [
    "ARG_BYTES",
    "ARG_FQN",
    "ARG_TYPES",
    "ARG_URL",
    "COMM_TYPES",
    "DEFAULT_TIMEOUT",
    "HPULL",
    "HPUSH",
    "HREV",
    "IO",
    "MAX_CHUNK_SIZE",
    "InitCodeMsg",
    "InitMsg",
    "InitSpecMsg",
    "decode_msg",
    "from_wire",
    "normalize_comm_type",
    "to_wire",
    "validate",
    "validate_name",
]

CODE = "code"
SPEC = "spec"
_NAME_CHARS = re.compile(r"[a-z0-9-]*")
_DNS1035_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_SEPARATOR = "://"


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
    :param comm_type: one of :data:`COMM_TYPES`; empty means ``hpush://``
    :param arg_type: ``""`` (bytes), ``url`` or ``fqn``
    :param timeout: seconds to wait for each pod to become Ready; 0 means 45 s
    """

    name: str
    comm_type: str = ""
    arg_type: str = ""
    timeout: float = 0.0

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


def _get_timeout(data: Mapping[str, Any]) -> float:
    value = _lookup(data, "timeout")
    if value is None:
        return 0.0
    if not isinstance(value, str):
        raise _bad("timeout", f'must be a duration string such as "45s" or "5m", got {json.dumps(value)}')
    return parse_duration(value)


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


# --------------------------------------------------------------------------------------------------
# validation


def _suggest_name(name: str) -> str:
    """Propose a valid ETL name close to ``name``."""
    candidate = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not candidate[:1].isalpha():
        candidate = f"etl-{candidate}".rstrip("-")
    candidate = candidate[:MAX_NAME_LEN].rstrip("-")
    if len(candidate) < MIN_NAME_LEN:
        candidate = f"{candidate}-etl"
    if _name_problem(candidate) is None:
        return candidate
    return "my-etl-1"


def _name_problem(name: str) -> str | None:
    """Return what is wrong with an ETL name, or None; reference rules first, then ours."""
    quoted = go_quote(name)
    rules = f"names have {MIN_NAME_LEN}-{MAX_NAME_LEN} characters from [a-z0-9-]"
    if len(name.encode("utf-8")) < MIN_NAME_LEN:
        return f"ETL name {quoted} is too short ({rules})"
    if len(name.encode("utf-8")) > MAX_NAME_LEN:
        return f"ETL name {quoted} is too long ({rules})"
    if not _NAME_CHARS.fullmatch(name):
        return f"ETL name {quoted} is invalid: can only contain [a-z0-9-] ({rules})"
    if not _DNS1035_NAME.fullmatch(name):
        return (
            f"ETL name {quoted} is invalid: must start with a lowercase letter and end with a lowercase "
            "letter or digit, because it becomes part of Kubernetes Pod, Service and label names "
            "(DNS-1035 labels)"
        )
    return None


def validate_name(name: str) -> str:
    """Check an ETL name; the error says what is wrong and suggests a valid name.

    :param name: the ETL name
    :return: the name, unchanged
    :raises ValidationError: too short/long (6–32 bytes), characters outside ``[a-z0-9-]``, or not
        starting with a letter / not ending with a letter or digit
    """
    if not isinstance(name, str):
        raise ValidationError(f"ETL name must be a string, got {type(name).__name__}")
    problem = _name_problem(name)
    if problem is not None:
        raise ValidationError(f"{problem}; try {go_quote(_suggest_name(name))}")
    return name


def _check_types(msg: InitMsg) -> None:
    """Reject fields of the wrong Python type (messages built in code rather than from JSON)."""
    for field in dataclasses.fields(msg):
        value = getattr(msg, field.name)
        if field.name == "timeout":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            expected = "a number of seconds"
        elif field.name == "dependencies":
            ok = value is None or isinstance(value, str)
            expected = "a string or None"
        elif field.name in ("chunk_size", "flags"):
            ok = isinstance(value, int) and not isinstance(value, bool)
            expected = "an integer"
        else:
            ok = isinstance(value, str)
            expected = "a string"
        if not ok:
            raise ValidationError(
                f"{type(msg).__name__}.{field.name} must be {expected}, got {type(value).__name__} {value!r}"
            )


def _env_fits(var: str, value: str) -> bool:
    return len(var) + 1 + len(value.encode("utf-8")) + 1 <= MAX_ENV_STRING


def _validate_code(msg: InitCodeMsg) -> None:
    comm = go_quote(msg.comm_type)
    if not msg.code:
        raise ValidationError(f"source code is empty ({go_quote(msg.runtime)})")
    if not msg.runtime:
        raise ValidationError(
            f"runtime is not specified (comm-type {comm}); use one of: {', '.join(sorted(RUNTIMES))}"
        )
    if msg.runtime not in RUNTIMES:
        raise ValidationError(
            f"unsupported runtime {go_quote(msg.runtime)} (supported: [{' '.join(sorted(RUNTIMES))}])"
        )
    if not msg.transform:
        raise ValidationError(f"transform function cannot be empty (comm-type {comm}, funcs {{Transform:}})")
    if not msg.transform.isidentifier() or keyword.iskeyword(msg.transform):
        raise ValidationError(
            f"transform function {go_quote(msg.transform)} is not a valid Python identifier "
            f'(comm-type {comm}); give the name of the function defined in the code, e.g. "transform"'
        )
    if not 0 <= msg.chunk_size <= MAX_CHUNK_SIZE:
        raise ValidationError(
            f"chunk-size {msg.chunk_size} is invalid, expecting 0 <= chunk-size <= MiB "
            f"(comm-type {comm}, runtime {go_quote(msg.runtime)})"
        )
    if msg.flags < 0:
        raise ValidationError(f"flags {msg.flags} is invalid, expecting flags >= 0 (comm-type {comm})")
    for var, text in (("AISTORE_CODE", msg.code), ("AISTORE_DEPS", msg.dependencies or "")):
        if "\x00" in text:
            raise ValidationError(f"{var} contains a NUL byte; environment variables cannot carry it")
        if not _env_fits(var, text):
            raise ValidationError(
                f"{'source code' if var == 'AISTORE_CODE' else 'dependencies'} too large "
                f"({len(text.encode('utf-8'))} bytes): it travels in environment variable {var}, "
                f"limited to {MAX_ENV_STRING - len(var) - 2} bytes; move bulky data out of the code "
                "(e.g. into dependencies or the image)"
            )


def validate(msg: InitMsg, *, allow_fqn: bool = True) -> InitMsg:
    """Validate a message and return a NEW one with the defaults filled in.

    Order and texts follow the reference (§1.8): name, comm type, arg type, arg/comm combinations,
    the FQN feature gate, then the kind's own checks; base errors end with ``[<message>]``.

    Deliberate differences from the reference:

    * the empty comm type is defaulted to ``hpush://`` *before* the arg/comm checks, so
      ``argument: "fqn"`` with no comm type is accepted (the reference rejects it, ``"" is not
      supported yet``);
    * names must also start with a letter and end with a letter or digit (Kubernetes names);
    * the transform function must be a Python identifier; the chunk-size message labels its values
      correctly; ``flags`` must be >= 0; negative timeouts are refused; code and dependencies
      must fit in one environment variable;
    * a pod spec is fully checked here (node affinity, pod anti-affinity, a container image), not
      only later on each target.

    :param msg: the message as received
    :param allow_fqn: False refuses ``argument: "fqn"`` (feature flag)
    :return: a copy with ``comm_type`` and ``timeout`` defaulted
    :raises ValidationError: on the first problem found
    """
    if not isinstance(msg, (InitCodeMsg, InitSpecMsg)):
        raise TypeError(f"expected InitCodeMsg or InitSpecMsg, got {type(msg).__name__}")
    _check_types(msg)
    detail = f" [{msg}]"
    name = msg.name
    problem = _name_problem(name)
    if problem is not None:
        raise ValidationError(f"{problem}; try {go_quote(_suggest_name(name))}{detail}")

    comm = msg.comm_type
    if comm and comm not in COMM_TYPES:
        hint = f"expecting one of: {', '.join(COMM_TYPES)}"
        normalized = normalize_comm_type(comm)
        if normalized in COMM_TYPES:
            hint = f"did you mean {go_quote(normalized)}?"
        raise ValidationError(f"unknown comm-type {go_quote(comm)} ({hint}){detail}", etl_name=name)
    if not comm:
        comm = HPUSH  # fixed ordering: default before the arg/comm combination checks

    arg = msg.arg_type
    if arg not in ARG_TYPES:
        raise ValidationError(
            f'unsupported arg-type {go_quote(arg)} (expecting "", "url" or "fqn"){detail}', etl_name=name
        )
    if arg == ARG_URL and comm != HPULL:
        raise ValidationError(
            f'arg-type "url" requires comm-type "hpull://" ({go_quote(comm)} is not supported yet){detail}',
            etl_name=name,
        )
    if arg == ARG_FQN and comm not in (HPULL, HPUSH):
        raise ValidationError(
            f'arg-type "fqn" requires comm-type ("hpull://" or "hpush://") - {go_quote(comm)} '
            f"is not supported yet{detail}",
            etl_name=name,
        )
    if arg == ARG_FQN and not allow_fqn:
        raise ValidationError(
            'arg-type "fqn" is not permitted by the configured feature flags '
            f"(Do-not-Allow-Passing-FQN-to-ETL){detail}",
            etl_name=name,
        )

    timeout = float(msg.timeout)
    if not math.isfinite(timeout) or timeout < 0:
        raise ValidationError(
            f"timeout {msg.timeout!r} is invalid, expecting a positive duration such as 45s or 5m "
            f"(0 means the default {format_duration(DEFAULT_TIMEOUT)}){detail}",
            etl_name=name,
        )
    if timeout == 0:
        timeout = DEFAULT_TIMEOUT

    out = dataclasses.replace(msg, comm_type=comm, timeout=timeout)
    if isinstance(out, InitCodeMsg):
        _validate_code(out)
    elif isinstance(out, InitSpecMsg):
        pod = parse_pod_spec(out.spec, etl_name=name)
        validate_pod_spec(pod, comm, etl_name=name)
    return out
