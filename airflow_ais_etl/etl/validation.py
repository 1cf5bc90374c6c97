"""Validation of init messages and ETL names: reference order and texts, plus our fixes.

Each check is a named step of :func:`validate`; every failure is a :class:`ValidationError` that
says what is wrong and how to fix it.
"""

from __future__ import annotations

import dataclasses
import keyword
import math
import re

from airflow_ais_etl.etl.constants import (
    ARG_FQN,
    ARG_TYPES,
    ARG_URL,
    COMM_TYPES,
    DEFAULT_TIMEOUT,
    HPULL,
    HPUSH,
    MAX_CHUNK_SIZE,
    MAX_ENV_STRING,
    MAX_NAME_LEN,
    MIN_NAME_LEN,
    WS,
)
from airflow_ais_etl.etl.duration import format_duration
from airflow_ais_etl.etl.errors import ValidationError, go_quote
from airflow_ais_etl.etl.msg import (
    DEFAULT_OBJ_TIMEOUT,
    InitCodeMsg,
    InitMsg,
    InitSpecMsg,
    normalize_comm_type,
)
from airflow_ais_etl.etl.podcheck import parse_pod_spec, validate_pod_spec
from airflow_ais_etl.etl.protocol import check_protocol
from airflow_ais_etl.etl.runtimes import RUNTIMES
from airflow_ais_etl.etl.specdefaults import apply_pod_annotations

__all__ = ["validate", "validate_name"]

_NAME_CHARS = re.compile(r"[a-z0-9-]*")
_DNS1035_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


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
        if field.name in ("timeout", "obj_timeout"):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            expected = "a number of seconds"
        elif field.name == "dependencies":
            ok = value is None or isinstance(value, str)
            expected = "a string or None"
        elif field.name == "direct_put":
            ok = isinstance(value, bool)
            expected = "a bool"
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
    if msg.comm_type == WS:
        raise ValidationError(
            'comm-type "ws://" needs a pod spec whose server speaks AIS\'s WebSocket protocol (e.g. '
            "aistore[etl]'s FastAPI server); the project's runtime serves hpush, hpull, hrev and io",
            etl_name=msg.name,
        )
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
    if isinstance(msg, InitSpecMsg):
        msg = apply_pod_annotations(msg)
    detail = f" [{msg}]"
    _check_name(msg.name, detail)
    comm = _checked_comm_type(msg, detail)
    _check_arg_type(msg, comm, detail, allow_fqn=allow_fqn)
    check_protocol(msg.protocol)
    out = dataclasses.replace(
        msg, comm_type=comm, timeout=_checked_duration(msg, "timeout", DEFAULT_TIMEOUT, "45s or 5m", detail)
    )
    _checked_duration(msg, "obj_timeout", DEFAULT_OBJ_TIMEOUT, "45s or 2m", detail)
    if isinstance(out, InitCodeMsg):
        _validate_code(out)
    elif isinstance(out, InitSpecMsg):
        pod = parse_pod_spec(out.spec, etl_name=out.name)
        validate_pod_spec(pod, comm, etl_name=out.name)
    return out


def _check_name(name: str, detail: str) -> None:
    problem = _name_problem(name)
    if problem is not None:
        raise ValidationError(f"{problem}; try {go_quote(_suggest_name(name))}{detail}")


def _checked_comm_type(msg: InitMsg, detail: str) -> str:
    """Return the comm type, ``hpush://`` when empty (before the arg checks: our ordering fix)."""
    comm = msg.comm_type
    if comm == WS:
        return comm
    if comm and comm not in COMM_TYPES:
        hint = f"expecting one of: {', '.join(COMM_TYPES)}"
        normalized = normalize_comm_type(comm)
        if normalized in COMM_TYPES:
            hint = f"did you mean {go_quote(normalized)}?"
        raise ValidationError(f"unknown comm-type {go_quote(comm)} ({hint}){detail}", etl_name=msg.name)
    return comm or HPUSH


def _check_arg_type(msg: InitMsg, comm: str, detail: str, *, allow_fqn: bool) -> None:
    arg, name = msg.arg_type, msg.name
    if arg not in ARG_TYPES:
        raise ValidationError(
            f'unsupported arg-type {go_quote(arg)} (expecting "", "url" or "fqn"){detail}', etl_name=name
        )
    if arg == ARG_URL and comm != HPULL:
        raise ValidationError(
            f'arg-type "url" requires comm-type "hpull://" ({go_quote(comm)} is not supported yet){detail}',
            etl_name=name,
        )
    if arg == ARG_FQN and comm not in (HPULL, HPUSH, WS):
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


def _checked_duration(msg: InitMsg, field: str, default: float, example: str, detail: str) -> float:
    """Return ``msg.<field>`` in seconds (``default`` when 0); refuse a negative or infinite one."""
    raw = getattr(msg, field)
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValidationError(
            f"{field} {raw!r} is invalid, expecting a positive duration such as {example} "
            f"(0 means the default {format_duration(default)}){detail}",
            etl_name=msg.name,
        )
    return value or default
