"""What every AIS ETL operator shares: the hook, the link, and turning unfixable errors into no-retry."""

from __future__ import annotations

import contextlib
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from airflow_ais_etl.etl.errors import EtlExistsError
from airflow_ais_etl.hooks.ais_etl import AisEtlHook
from airflow_ais_etl.links.etl import AisEtlLink
from airflow_ais_etl.operators.args import (
    as_float,
    as_int,
    as_str_map,
    dependencies_text,
    resolve_code,
    resolve_spec,
)
from airflow_ais_etl.version_compat import BaseOperator

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from airflow.sdk import Context

    from airflow_ais_etl.service import EtlInfo

__all__ = ["AisEtlBaseOperator", "fail_without_retry", "init_etl"]

_CODE_KEYS = frozenset(
    {
        "code",
        "code_file",
        "python_callable",
        "transform",
        "dependencies",
        "runtime",
        "comm_type",
        "arg_type",
        "chunk_size",
        "timeout",
        "env",
        "replace",
    }
)
_SPEC_KEYS = frozenset({"spec", "comm_type", "arg_type", "timeout", "env", "replace"})


@contextlib.contextmanager
def fail_without_retry() -> Iterator[None]:
    """Turn errors no retry can fix (bad arguments, invalid definitions) into ``AirflowFailException``.

    ``ValidationError`` is a ``ValueError``; a conflicting definition (``EtlExistsError``) needs a
    change of the DAG too.
    """
    try:
        yield
    except (ValueError, TypeError, EtlExistsError) as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def init_etl(hook: AisEtlHook, etl_name: str, kind: str, kwargs: Mapping[str, Any]) -> EtlInfo:
    """Initialise ``etl_name`` from operator-style arguments (``kind`` is ``code`` or ``spec``).

    The same arguments the init operators take; used by them and by the bucket transform's
    ``etl_definition``. Raises ValueError/TypeError for bad arguments.
    """
    if not isinstance(etl_name, str) or not etl_name:
        raise ValueError(f"etl_name must be a non-empty string, got {etl_name!r}")
    allowed = _CODE_KEYS if kind == "code" else _SPEC_KEYS if kind == "spec" else None
    if allowed is None:
        raise ValueError(f"ETL definition kind must be 'code' or 'spec', got {kind!r}")
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(
            f"unknown {kind} ETL argument(s): {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
    common: dict[str, Any] = {
        "comm_type": kwargs.get("comm_type") or "hpush://",
        "arg_type": kwargs.get("arg_type") or "",
        "timeout": _timeout(kwargs.get("timeout", "45s")),
        "extra_env": as_str_map("env", kwargs.get("env")) or None,
        "replace": bool(kwargs.get("replace", False)),
    }
    if not isinstance(common["comm_type"], str) or not isinstance(common["arg_type"], str):
        raise TypeError("comm_type and arg_type must be strings")
    if kind == "spec":
        return hook.init_spec(etl_name, resolve_spec(kwargs.get("spec")), **common)
    code, transform = resolve_code(
        kwargs.get("code"), kwargs.get("code_file"), kwargs.get("python_callable"), kwargs.get("transform")
    )
    runtime = kwargs.get("runtime")
    if runtime is not None and not isinstance(runtime, str):
        raise TypeError(f"runtime must be a string such as 'python3.11v2', got {type(runtime).__name__}")
    return hook.init_code(
        etl_name,
        code,
        dependencies=dependencies_text(kwargs.get("dependencies")),
        runtime=runtime or None,
        transform=transform,
        chunk_size=as_int("chunk_size", kwargs.get("chunk_size", 0), minimum=0),
        **common,
    )


def _timeout(value: Any) -> str | float:
    if isinstance(value, str) and value.strip() and not value.strip()[-1].isdigit():
        return value.strip()  # a duration such as "45s" or "2m": the model parses it
    return as_float("timeout", value)


class AisEtlBaseOperator(BaseOperator):
    """Base of the AIS ETL operators: connection id, hook, and the ETL link.

    :param ais_etl_conn_id: the ``ais_etl`` connection (templated)
    """

    operator_extra_links: tuple[AisEtlLink, ...] = (AisEtlLink(),)

    def __init__(self, *, ais_etl_conn_id: str = AisEtlHook.default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ais_etl_conn_id = ais_etl_conn_id

    @cached_property
    def hook(self) -> AisEtlHook:
        return AisEtlHook(self.ais_etl_conn_id)

    def persist_link(self, context: Context, etl_name: str) -> None:
        """Publish the ETL link now (visible while the task runs); a failure only logs a warning."""
        try:
            url = self.hook.etl_url(etl_name)
        except ValueError as exc:
            self.log.warning("cannot build the ETL link: %s", exc)
            return
        if url:
            AisEtlLink.persist(context, url)
