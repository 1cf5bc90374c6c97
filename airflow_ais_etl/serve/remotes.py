"""Configured object-store buckets: which AIS bucket (provider and name) is which object-store URL.

``ais-etl serve --bucket-url aws/NAME=s3://bucket/prefix,conn_id=aws_default`` (repeatable), or a
JSON file ``--bucket-map FILE``: ``{"aws/NAME": "s3://..."}`` or ``{"aws/NAME": {"url": ..., "conn_id": ...}}``.
Only these are reachable; the SDK names them as it always does (``client.bucket("NAME", provider="aws")``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from airflow_ais_etl.etl.coerce import describe
from airflow_ais_etl.etl.errors import ValidationError

__all__ = ["RemoteBucket", "load_bucket_map", "normalize_provider", "parse_bucket_url"]

PROVIDER_ALIASES = {"": "ais", "s3": "aws", "gs": "gcp", "gcs": "gcp", "az": "azure"}
_PROVIDER = re.compile(r"[a-z][a-z0-9]{0,15}")
FLAG_HELP = "--bucket-url PROVIDER/NAME=URL[,conn_id=ID] (or --bucket-map FILE)"


def normalize_provider(provider: str | None) -> str:
    """One spelling per provider, as AIS's own: ``s3`` is ``aws``, ``gs`` is ``gcp``, none is ``ais``."""
    value = (provider or "").strip().lower()
    return PROVIDER_ALIASES.get(value, value)


@dataclass(frozen=True)
class RemoteBucket:
    """One configured bucket: the AIS provider and name the SDK uses, and the URL (and connection) behind it."""

    provider: str
    name: str
    url: str
    conn_id: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.provider, self.name


def _remote(bucket: str, url: str, conn_id: str | None, where: str) -> RemoteBucket:
    provider, sep, name = bucket.partition("/")
    provider = normalize_provider(provider)
    if not sep or not name or "/" in name or not _PROVIDER.fullmatch(provider):
        raise ValidationError(f"{where}: bucket {bucket!r} must be PROVIDER/NAME, e.g. aws/images")
    if "://" not in url:
        raise ValidationError(f"{where}: {url!r} is not a URL (e.g. s3://bucket/prefix, gs://bucket)")
    return RemoteBucket(provider, name, url.rstrip("/"), conn_id or None)


def parse_bucket_url(spec: str) -> RemoteBucket:
    """Parse ``PROVIDER/NAME=URL[,conn_id=ID]`` (the ``--bucket-url`` value)."""
    bucket, sep, rest = spec.partition("=")
    if not sep:
        raise ValidationError(f"--bucket-url {spec!r}: expected PROVIDER/NAME=URL[,conn_id=ID]")
    url, _, option = rest.partition(",conn_id=")
    if "," in option:
        raise ValidationError(f"--bucket-url {spec!r}: only one option, conn_id=ID, may follow the URL")
    return _remote(bucket.strip(), url.strip(), option.strip(), f"--bucket-url {spec!r}")


def _entry(bucket: str, value: Any, where: str) -> RemoteBucket:
    if isinstance(value, str):
        return _remote(bucket, value, None, where)
    if isinstance(value, dict) and isinstance(value.get("url"), str) and set(value) <= {"url", "conn_id"}:
        conn_id = value.get("conn_id")
        if conn_id is not None and not isinstance(conn_id, str):
            raise ValidationError(f"{where}: conn_id of {bucket!r} must be a string, got {describe(conn_id)}")
        return _remote(bucket, value["url"], conn_id, where)
    raise ValidationError(
        f'{where}: {bucket!r} must map to a URL or {{"url": URL, "conn_id": ID}}, got {describe(value)}'
    )


def load_bucket_map(path: str) -> list[RemoteBucket]:
    """Read a ``--bucket-map`` JSON file: an object from ``PROVIDER/NAME`` to a URL or ``{url, conn_id}``."""
    where = f"--bucket-map {path}"
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as err:
        raise ValidationError(f"{where}: cannot read it: {err.strerror}") from None
    except ValueError as err:
        raise ValidationError(f"{where}: not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValidationError(
            f'{where}: expected a JSON object {{"aws/NAME": "s3://..."}}, got {describe(data)}'
        )
    return [_entry(str(k), v, where) for k, v in data.items()]


def index_remotes(remotes: list[RemoteBucket]) -> dict[tuple[str, str], RemoteBucket]:
    """Index by (provider, name); the same bucket configured twice is an error, not a silent override."""
    index: dict[tuple[str, str], RemoteBucket] = {}
    for remote in remotes:
        if remote.key in index:
            raise ValidationError(f"bucket {remote.provider}://{remote.name} is configured twice")
        index[remote.key] = remote
    return index
