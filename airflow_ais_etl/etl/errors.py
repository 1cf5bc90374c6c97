"""One exception tree for the whole project.

ETL errors carry the reference's error context (target, ETL, pod, service) and render it the way
AIStore does (``[t[t1],etl="e",pod="p",service="s"] reason``) so logs read the same.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

__all__ = [
    "AbortError",
    "AisEtlError",
    "EtlError",
    "EtlExistsError",
    "EtlNotFoundError",
    "PodGoneError",
    "PodStartError",
    "StorageError",
    "TransformError",
    "ValidationError",
    "go_quote",
]

_CONTEXT_FIELDS = ("etl_name", "target", "pod_name", "svc_name")
_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}

_E = TypeVar("_E", bound="EtlError")


def go_quote(value: str) -> str:
    """Quote ``value`` like Go's ``%q`` so messages match the reference byte for byte.

    :param value: any text
    :return: the text in double quotes, with Go escapes for quotes, backslashes and non-printables
    """
    out = ['"']
    for ch in value:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


class AisEtlError(Exception):
    """Root of every error this project raises on purpose."""


class EtlError(AisEtlError):
    """Fail an ETL operation, naming where it failed (target, ETL, pod, service).

    :param reason: what went wrong (the text after the context)
    :param etl_name: ETL name
    :param target: target id (rendered unquoted as ``t[<id>]``)
    :param pod_name: pod name
    :param svc_name: service name
    """

    def __init__(
        self,
        reason: str,
        *,
        etl_name: str = "",
        target: str = "",
        pod_name: str = "",
        svc_name: str = "",
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.etl_name = etl_name
        self.target = target
        self.pod_name = pod_name
        self.svc_name = svc_name

    @property
    def context(self) -> str:
        """Return the ``[t[..],etl="..",pod="..",service=".."]`` prefix, or ``""`` without context."""
        parts = []
        if self.target:
            parts.append(f"t[{self.target}]")
        if self.etl_name:
            parts.append(f"etl={go_quote(self.etl_name)}")
        if self.pod_name:
            parts.append(f"pod={go_quote(self.pod_name)}")
        if self.svc_name:
            parts.append(f"service={go_quote(self.svc_name)}")
        return "[" + ",".join(parts) + "]" if parts else ""

    def __str__(self) -> str:
        prefix = self.context
        return f"{prefix} {self.reason}" if prefix else self.reason

    def with_context(self: _E, **context: str) -> _E:
        """Return a copy with the given non-empty context values filled in; never clear a field.

        Subclass attributes (exit codes, object names, ...) survive because the copy is shallow and
        generic.

        :param context: any of ``etl_name``, ``target``, ``pod_name``, ``svc_name``
        :return: a new exception of the same class
        """
        unknown = set(context) - set(_CONTEXT_FIELDS)
        if unknown:
            raise TypeError(f"with_context() got unexpected context keys: {sorted(unknown)}")
        new = copy.copy(self)
        for key, value in context.items():
            if value:
                setattr(new, key, value)
        new.__traceback__ = self.__traceback__
        return new

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments do not survive the default exception pickling; rebuild from the
        # reason and restore every attribute from the instance dict.
        return (_rebuild, (type(self), self.reason, self.__dict__.copy()))


def _rebuild(cls: type[EtlError], reason: str, state: dict[str, Any]) -> EtlError:
    """Recreate an unpickled ETL error without calling subclass ``__init__`` signatures."""
    err = cls.__new__(cls)
    Exception.__init__(err, reason)
    err.__dict__.update(state)
    return err


class ValidationError(EtlError, ValueError):
    """Reject input that no retry can fix (names, messages, specs, templates, options)."""


class EtlNotFoundError(EtlError):
    """Report that the named ETL is not defined or not running where it was asked for."""


class EtlExistsError(EtlError):
    """Report that an ETL with this name is already registered."""


class PodStartError(EtlError):
    """Report that a transformation pod failed to start (init failure, crash, image pull, timeout).

    :param exit_code: exit code of the failed container, when known
    :param log_tail: the last lines of its log, when available
    """

    def __init__(
        self,
        reason: str,
        *,
        exit_code: int | None = None,
        log_tail: str = "",
        etl_name: str = "",
        target: str = "",
        pod_name: str = "",
        svc_name: str = "",
    ) -> None:
        super().__init__(reason, etl_name=etl_name, target=target, pod_name=pod_name, svc_name=svc_name)
        self.exit_code = exit_code
        self.log_tail = log_tail


class PodGoneError(EtlError):
    """Report that a running transformation pod disappeared."""


class TransformError(EtlError):
    """Report that transforming one object failed.

    :param object_name: the source object
    :param status: the pod's HTTP status, when it answered at all
    """

    def __init__(
        self,
        reason: str,
        *,
        object_name: str = "",
        status: int | None = None,
        etl_name: str = "",
        target: str = "",
        pod_name: str = "",
        svc_name: str = "",
    ) -> None:
        super().__init__(reason, etl_name=etl_name, target=target, pod_name=pod_name, svc_name=svc_name)
        self.object_name = object_name
        self.status = status


class AbortError(EtlError):
    """Report that a job was aborted, e.g. ``etl job aborted: target t2 left``.

    :param cause: why it was aborted (membership change, stop, kill)
    """

    def __init__(
        self,
        reason: str,
        *,
        cause: str = "",
        etl_name: str = "",
        target: str = "",
        pod_name: str = "",
        svc_name: str = "",
    ) -> None:
        super().__init__(reason, etl_name=etl_name, target=target, pod_name=pod_name, svc_name=svc_name)
        self.cause = cause


class StorageError(AisEtlError):
    """Report a failure to read, list or write bucket objects."""
