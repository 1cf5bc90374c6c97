"""One ETL definition: what operators, the CLI and the service API all build, then init from.

An :class:`EtlDefinition` is an ETL apart from its name: its source (code or a Pod spec) and the
options of its pods. :meth:`EtlDefinition.from_mapping` builds it from loose arguments (operator
fields, a DAG's ``etl_definition`` dict, CLI flags) and is the only place that knows the argument
names; :meth:`EtlDefinition.to_msg` turns it into the model's init message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from airflow_ais_etl.etl.coerce import as_bool, as_float, as_int, as_str, as_str_map, describe
from airflow_ais_etl.etl.constants import ARG_BYTES, DEFAULT_TIMEOUT, HPUSH
from airflow_ais_etl.etl.duration import parse_duration
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.msg import CODE, SPEC, InitCodeMsg, InitMsg, InitSpecMsg, normalize_comm_type
from airflow_ais_etl.etl.podoptions import parse_pod_options
from airflow_ais_etl.etl.protocol import check_protocol
from airflow_ais_etl.etl.runtimes import default_runtime
from airflow_ais_etl.etl.sources import code_text, requirements_text, spec_text
from airflow_ais_etl.etl.specdefaults import merge_declared, spec_document_of

__all__ = ["CODE_KEYS", "COMMON_KEYS", "SPEC_KEYS", "CodeSource", "EtlDefinition", "SpecSource"]

COMMON_KEYS = (
    "comm_type",
    "arg_type",
    "timeout",
    "obj_timeout",
    "env",
    "pod_options",
    "replace",
    "protocol",
    "direct_put",
)
"""Arguments of every ETL definition."""
CODE_KEYS = (
    "code",
    "code_file",
    "python_callable",
    "transform",
    "dependencies",
    "runtime",
    "chunk_size",
    *COMMON_KEYS,
)
"""Arguments of a code ETL: exactly one of ``code``, ``code_file``, ``python_callable``, then options."""
SPEC_KEYS = ("spec", *COMMON_KEYS)
"""Arguments of a Pod-spec ETL."""
_KEYS = {CODE: CODE_KEYS, SPEC: SPEC_KEYS}


@dataclass(frozen=True)
class CodeSource:
    """Python code that the project's runtime image runs.

    :param code: module source text defining the transform function
    :param transform: name of that function
    :param dependencies: pip requirements text (``None``: none)
    :param runtime: runtime name such as ``python3.11v2``; ``""`` means this interpreter's
    :param chunk_size: 0 = whole object in memory, else stream in chunks of this many bytes
    """

    kind: ClassVar[str] = CODE

    code: str
    transform: str = "transform"
    dependencies: str | None = None
    runtime: str = ""
    chunk_size: int = 0

    def __post_init__(self) -> None:
        for name in ("code", "transform", "runtime"):
            as_str(name, getattr(self, name))
        if self.dependencies is not None:
            as_str("dependencies", self.dependencies)
        if isinstance(self.chunk_size, bool) or not isinstance(self.chunk_size, int):
            raise ValidationError(f"chunk_size must be an integer, got {describe(self.chunk_size)}")


@dataclass(frozen=True)
class SpecSource:
    """A Pod manifest (YAML or JSON text) of any container that speaks the transformer protocol."""

    kind: ClassVar[str] = SPEC

    spec: str

    def __post_init__(self) -> None:
        as_str("spec", self.spec)


@dataclass(frozen=True)
class EtlDefinition:
    """An ETL apart from its name: its source and how its pods talk, start and are replaced.

    :param source: the code or the Pod spec
    :param comm_type: ``hpush://``, ``hpull://``, ``hrev://`` or ``io://``
    :param arg_type: ``""`` (bytes), ``url`` or ``fqn``
    :param timeout: seconds each pod may take to become ready
    :param obj_timeout: seconds one object's transform may take (0: the default, 45 s)
    :param env: extra environment variables of the pods (stored with the ETL, restored by ``start``)
    :param pod_options: this ETL's pod options (:mod:`~airflow_ais_etl.etl.podoptions`: resources,
        image pull policy and secrets, tolerations, labels, ...), over the connection's key by key;
        stored with the ETL and part of its identity, like ``env``
    :param replace: replace an existing ETL of the same name that has a different definition
    :param protocol: transformer protocol generation, ``2025`` (default) or ``2024`` (docs/protocol.md)
    :param direct_put: offline jobs let the pod PUT results to the target itself (``support_direct_put``)
    """

    source: CodeSource | SpecSource
    comm_type: str = HPUSH
    arg_type: str = ARG_BYTES
    timeout: float = DEFAULT_TIMEOUT
    obj_timeout: float = 0.0
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    pod_options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    replace: bool = False
    protocol: str = ""
    direct_put: bool = False

    def __post_init__(self) -> None:
        check_protocol(self.protocol)
        if not isinstance(self.direct_put, bool):
            raise ValidationError(f"direct_put must be a bool, got {describe(self.direct_put)}")
        if not isinstance(self.source, (CodeSource, SpecSource)):
            raise ValidationError(f"source must be a CodeSource or a SpecSource, got {describe(self.source)}")
        as_str("comm_type", self.comm_type)
        as_str("arg_type", self.arg_type)
        as_float("timeout", self.timeout, positive=False)
        as_float("obj_timeout", self.obj_timeout, positive=False)
        if as_str_map("env", self.env) != self.env:
            raise ValidationError(f"env must map strings to strings, got {describe(self.env)}")
        object.__setattr__(self, "pod_options", parse_pod_options(self.pod_options))
        if not isinstance(self.replace, bool):
            raise ValidationError(f"replace must be a bool, got {describe(self.replace)}")

    @property
    def kind(self) -> str:
        """Return ``code`` or ``spec``."""
        return self.source.kind

    def to_msg(self, name: str) -> InitMsg:
        """Return the init message of this definition under ``name``, not yet validated.

        :param name: the ETL name
        :return: an :class:`InitCodeMsg` (runtime defaulted to this interpreter's) or :class:`InitSpecMsg`
        """
        common: dict[str, Any] = {
            "name": name,
            "comm_type": self.comm_type,
            "arg_type": self.arg_type,
            "timeout": self.timeout,
            "obj_timeout": self.obj_timeout,
            "protocol": self.protocol,
            "direct_put": self.direct_put,
        }
        source = self.source
        if isinstance(source, SpecSource):
            return InitSpecMsg(**common, spec=source.spec)
        return InitCodeMsg(
            **common,
            code=source.code,
            dependencies=source.dependencies,
            runtime=source.runtime or default_runtime(),
            transform=source.transform,
            chunk_size=source.chunk_size,
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, kind: str | None = None) -> EtlDefinition:
        """Build a definition from loose arguments: rendered operator fields, a dict, CLI flags.

        ``None`` means "not given", so callers may pass every argument they have. Strings are
        accepted where templates render numbers, bools and mappings (``"3"``, ``"true"``, JSON),
        a comm type may omit ``://``, and ``dependencies`` may be a list of requirements.

        :param data: the arguments (:data:`CODE_KEYS` or :data:`SPEC_KEYS`), optionally ``kind``
        :param kind: ``code`` or ``spec``; default: ``data["kind"]``, else ``spec`` if a spec is given
        :raises ValidationError: unknown keys (the error lists the allowed ones), wrong types, or no
            single code source
        """
        if not isinstance(data, Mapping):
            raise ValidationError(f"an ETL definition must be a mapping of arguments, got {describe(data)}")
        kind = _kind(data, kind)
        given = {key: value for key, value in data.items() if key != "kind" and value is not None}
        unknown = sorted(str(key) for key in set(given) - set(_KEYS[kind]))
        if unknown:
            raise ValidationError(
                f"unknown argument(s) of a {kind} ETL definition: {', '.join(unknown)} "
                f"(allowed: kind, {', '.join(_KEYS[kind])})"
            )
        options = {key: parse(key, given[key]) for key, parse in _OPTIONS.items() if key in given}
        if kind == CODE:
            return cls(_code_source(given), **options)
        document = spec_document_of(spec_text(given.get("spec")))
        return cls(SpecSource(document.text), **merge_declared(document, options))


def _kind(data: Mapping[str, Any], kind: str | None) -> str:
    declared = data.get("kind")
    if kind is not None and declared is not None and declared != kind:
        raise ValidationError(f"ETL definition kind {declared!r} does not match {kind!r}")
    chosen = kind or declared or (SPEC if data.get("spec") is not None else CODE)
    if chosen not in _KEYS:
        raise ValidationError(f"ETL definition kind must be 'code' or 'spec', got {describe(chosen)}")
    return str(chosen)


def _code_source(given: Mapping[str, Any]) -> CodeSource:
    code, transform = code_text(
        given.get("code"), given.get("code_file"), given.get("python_callable"), given.get("transform")
    )
    return CodeSource(
        code=code,
        transform=transform,
        dependencies=requirements_text(given.get("dependencies")),
        runtime=as_str("runtime", given.get("runtime", "")),
        chunk_size=as_int("chunk_size", given.get("chunk_size", 0)),
    )


def _comm_type(name: str, value: Any) -> str:
    return normalize_comm_type(as_str(name, value)) or HPUSH


def _timeout(name: str, value: Any) -> float:
    """Accept a duration (``"45s"``, ``"2m"``) or seconds (``30``, ``"30"``)."""
    if isinstance(value, str) and value.strip()[-1:].isdigit():
        value = as_float(name, value, positive=False)
    try:
        return parse_duration(value)
    except ValidationError as exc:
        raise ValidationError(f"{name}: {exc}") from None


_OPTIONS: dict[str, Callable[[str, Any], Any]] = {
    "comm_type": _comm_type,
    "arg_type": as_str,
    "timeout": _timeout,
    "obj_timeout": _timeout,
    "env": as_str_map,
    "pod_options": lambda name, value: parse_pod_options(value, name),
    "replace": as_bool,
    "protocol": as_str,
    "direct_put": as_bool,
}
