"""The request a target sends a transformation pod for one object: method and escaped URL.

Pure: built exactly as the reference target builds it (ais-etl-semantics §4.2–§4.4), for both
protocol generations (docs/protocol.md).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from airflow_ais_etl.etl.constants import (
    ALLOWED_ARGS,
    ARG_FQN,
    HPUSH,
    IO,
    PROTOCOL_2024,
    QPARAM_ETL_ARGS,
    QPARAM_ETL_FQN,
)
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.naming import callback_path, fqn_path, hpush_path, path_escape, uname
from airflow_ais_etl.etl.podspec import io_query
from airflow_ais_etl.etl.protocol import check_etl_args, effective_protocol

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.base import BucketRef, PodEndpoint

__all__ = ["build_request", "join_url"]


def join_url(base: str, path: str) -> str:
    """Join a base URL and a path with exactly one ``/`` (the reference's ``joinPath``)."""
    return base.rstrip("/") + "/" + path.lstrip("/")


@functools.lru_cache(maxsize=64)
def _io_query_string(command: tuple[str, ...]) -> str:
    return urlencode(io_query(list(command)))


def build_request(
    endpoint: PodEndpoint,
    *,
    comm_type: str,
    arg_type: str,
    bucket_ref: BucketRef | None,
    obj: str,
    fqn: str | None = None,
    protocol: str = "",
    etl_args: str = "",
) -> tuple[str, str]:
    """Return the method and the (already escaped) URL the target sends for one object.

    ``protocol`` 2025 (the default) sends an ``fqn`` as AIS 2.x does, the object's own path plus
    query ``etl_fqn`` (Go ``url.PathEscape`` of the file name, then query-encoded); 2024 sends the
    escaped file name as the path. ``etl_args`` go into query ``etl_args`` (docs/protocol.md).

    :raises ValidationError: for a comm/arg combination the reference refuses, or ``fqn`` missing
    """
    allowed = ALLOWED_ARGS.get(comm_type)
    if allowed is None:
        raise ValidationError(f"unknown comm-type {comm_type!r}")
    if arg_type not in allowed:
        raise ValidationError(f"arg_type {arg_type!r} is not supported by comm-type {comm_type!r}")
    generation = effective_protocol(protocol)
    etl_args = check_etl_args(etl_args, protocol=protocol, comm_type=comm_type)
    if arg_type == ARG_FQN and not fqn:
        raise ValidationError(f"arg_type 'fqn' needs the object's local file name ({obj!r} has none)")
    if arg_type == ARG_FQN and generation == PROTOCOL_2024:
        return ("PUT" if comm_type == HPUSH else "GET"), join_url(endpoint.url, fqn_path(fqn or ""))
    if bucket_ref is None:
        raise ValidationError(f"comm-type {comm_type} needs the source bucket's gateway name for {obj!r}")
    query: dict[str, str] = {}
    if etl_args:
        query[QPARAM_ETL_ARGS] = etl_args
    if arg_type == ARG_FQN:
        query[QPARAM_ETL_FQN] = path_escape(fqn or "")
    if comm_type in (HPUSH, IO):
        url = join_url(endpoint.url, hpush_path(bucket_ref.name, obj))
        if comm_type == IO and endpoint.io_command:
            url += "?" + _io_query_string(tuple(endpoint.io_command))
        method = "PUT"
    else:
        method, url = (
            "GET",
            join_url(endpoint.url, callback_path(uname(bucket_ref.provider, bucket_ref.name, obj))),
        )
    if query:
        url += ("&" if "?" in url else "?") + urlencode(sorted(query.items()))
    return method, url
