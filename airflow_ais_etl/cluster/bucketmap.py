"""The gateway's bucket map: which bucket name (in pods' callback unames) means which URL.

``{"<bucket id>": {"url": "..."}}`` in one JSON file, written by jobs (atomically, under a file
lock) and read by the gateway (Kubernetes, tests). Standard library only, like the gateway.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from airflow_ais_etl.cluster.private import locked, write_private

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.base import BucketRef

__all__ = ["bucket_name", "read_buckets", "register_bucket"]


def read_buckets(buckets_file: str) -> dict[str, dict[str, str]]:
    """Return the bucket map from ``buckets_file`` (empty when the file does not exist yet)."""
    try:
        with open(buckets_file, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"bucket map {buckets_file} is not a JSON object")
    return data


def bucket_name(url: str) -> tuple[str, str]:
    """Return the gateway's name for the bucket at ``url`` and the URL's one spelling."""
    from airflow_ais_etl.dataplane.storage.urls import bucket_id, normalize_url

    norm = normalize_url(url)
    return bucket_id(norm), norm


def register_bucket(buckets_file: str, url: str) -> BucketRef:
    """Add the bucket at ``url`` to the gateway's map (atomically, under a file lock).

    :param buckets_file: the JSON map the gateway reads
    :param url: a directory, ``file://`` URL or object-store URL
    :return: how pods name the bucket in callbacks
    """
    from airflow_ais_etl.cluster.base import BucketRef

    name, norm = bucket_name(url)
    with locked(buckets_file + ".lock"):
        buckets = read_buckets(buckets_file)
        if buckets.get(name, {}).get("url") != norm:
            buckets[name] = {"url": norm}
            write_private(buckets_file, json.dumps(buckets, indent=1, sort_keys=True), fsync=True)
    return BucketRef(provider="ais", name=name, extra={"url": norm})
