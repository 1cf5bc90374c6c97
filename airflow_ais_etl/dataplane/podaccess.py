"""The headers that let a pod of the project's runtime know a request comes from its ETL's engine.

The token goes with every request to an endpoint that has one; for ``arg_type fqn`` the source
bucket's directory goes too, so the pod opens only files under the bucket the job was granted.
Pods that do not check (AIS's own servers, user containers) ignore both headers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow_ais_etl.dataplane.storage.urls import local_dir
from airflow_ais_etl.etl.constants import ARG_FQN, FQN_ROOT_HEADER, TOKEN_HEADER

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.base import BucketRef, PodEndpoint

__all__ = ["access_headers"]


def access_headers(endpoint: PodEndpoint, arg_type: str, bucket_ref: BucketRef | None) -> str:
    """Return the raw header lines (``Name: value\\r\\n``) for one request to ``endpoint``."""
    token = endpoint.token
    if not token:
        return ""
    if any(c in token for c in "\r\n"):
        raise ValueError("an ETL token may not contain line breaks")
    lines = f"{TOKEN_HEADER}: {token}\r\n"
    if arg_type == ARG_FQN and bucket_ref is not None:
        root = local_dir(str(bucket_ref.extra.get("url", "")))
        if root:
            lines += f"{FQN_ROOT_HEADER}: {quote(root, safe='/')}\r\n"
    return lines
