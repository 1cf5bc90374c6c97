"""Offline transforms from AIS's messages: ``etl-bck`` (a whole bucket, ``TCBckMsg``) and
``etl-listrange`` (listed or templated objects, ``TCMultiObj``) become a registry job that runs
``AisEtl.transform_bucket`` in a thread."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.etl.coerce import describe
from airflow_ais_etl.etl.duration import parse_duration
from airflow_ais_etl.etl.errors import EtlNotFoundError, ValidationError
from airflow_ais_etl.serve.jobs import ETL_BCK, ETL_OBJECTS

if TYPE_CHECKING:
    from airflow_ais_etl.serve.context import ServeContext
    from airflow_ais_etl.serve.jobs import Job

__all__ = ["options_of", "pipeline_of", "start_transform"]

DEFAULT_WORKERS = 8
_KNOWN = {
    "id", "pipeline", "request_timeout", "prefix", "prepend", "dry_run", "ext", "num-workers", "coer",
    "objnames", "template", "tobck", "force", "latest-ver", "synchronize",
}  # fmt: skip
_IGNORED_TRUE = ("force", "latest-ver", "synchronize")
"""Remote-bucket options: meaningless for served directories, refused when set rather than ignored."""


def pipeline_of(value: Mapping[str, Any]) -> list[str]:
    """The ETL names of a transform message: ``id``, then ``pipeline``."""
    name = value.get("id")
    if not isinstance(name, str) or not name:
        raise ValidationError('transform message: "id" (the ETL name) is missing')
    rest = value.get("pipeline") or []
    if not isinstance(rest, list) or not all(isinstance(n, str) and n for n in rest):
        raise ValidationError(
            f'transform message: "pipeline" must be a list of ETL names, got {describe(rest)}'
        )
    return [name, *rest]


def _workers(value: Any) -> int:
    if value in (None, 0):
        return DEFAULT_WORKERS
    if isinstance(value, bool) or not isinstance(value, int) or value < -1:
        raise ValidationError(f"num-workers must be an integer >= -1, got {describe(value)}")
    return 1 if value == -1 else value


def options_of(value: Mapping[str, Any]) -> OfflineOptions:
    """Build the engine's options from a ``TCBckMsg``/``TCMultiObj`` value; unknown fields are refused."""
    unknown = sorted(set(value) - _KNOWN)
    if unknown:
        raise ValidationError(f"transform message: unknown field(s) {', '.join(unknown)}")
    for key in _IGNORED_TRUE:
        if value.get(key):
            raise ValidationError(f"transform message: {key!r} applies to remote buckets; not supported here")
    objnames = value.get("objnames")
    if objnames is not None and (
        not isinstance(objnames, list) or not all(isinstance(n, str) for n in objnames)
    ):
        raise ValidationError(f"objnames must be a list of object names, got {describe(objnames)}")
    timeout = value.get("request_timeout")
    ext = value.get("ext")
    if ext is not None and not isinstance(ext, Mapping):
        raise ValidationError(f'ext must map extensions, e.g. {{"jpg": "txt"}}, got {describe(ext)}')
    options = OfflineOptions(
        prefix=str(value.get("prefix") or ""),
        objects=tuple(objnames) if objnames else None,
        template=value.get("template") or None,
        ext=dict(ext) if ext else None,
        prepend=str(value.get("prepend") or ""),
        dry_run=bool(value.get("dry_run", False)),
        continue_on_error=bool(value.get("coer", False)),
        request_timeout=parse_duration(timeout) or None if timeout else None,
        num_workers=_workers(value.get("num-workers")),
        progress_interval=0.5,
    )
    options.validate()
    return options


def start_transform(
    ctx: ServeContext, kind: str, src: tuple[str, str], dst: tuple[str, str], value: Any
) -> Job:
    """Check the message, the ETLs and the buckets now (errors answer the request), then run the job."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"transform message must be a JSON object, got {describe(value)}")
    names = pipeline_of(value)
    options = options_of(value)
    if kind == ETL_OBJECTS and not (options.objects or options.template):
        raise ValidationError("etl-listrange needs objnames or a template")
    if kind == ETL_BCK and (options.objects or options.template):
        raise ValidationError("etl-bck transforms a bucket (or a prefix); list objects with etl-listrange")
    for name in names:
        ctx.api.view(name)
        if not ctx.api.backend.endpoints(name):
            raise EtlNotFoundError(f"etl job {name} is not running (start it first)", etl_name=name)
    (src_provider, src_name), (dst_provider, dst_name) = src, dst
    ctx.buckets.open(src_name, src_provider)
    ctx.buckets.create(dst_name, dst_provider, exist_ok=True)
    src_url, src_conn = ctx.buckets.location(src_name, src_provider)
    dst_url, dst_conn = ctx.buckets.location(dst_name, dst_provider)

    def run(job: Job) -> dict[str, Any]:
        return ctx.api.transform_bucket(
            names,
            src_url,
            dst_url,
            options,
            progress=job.stats.update,
            control=job.control,
            src_conn_id=src_conn,
            dst_conn_id=dst_conn,
        )

    shown_src, shown_dst = ctx.buckets.url(src_name, src_provider), ctx.buckets.url(dst_name, dst_provider)
    return ctx.jobs.start(kind, names, shown_src, shown_dst, run)
