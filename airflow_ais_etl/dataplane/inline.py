"""Inline transforms: one object through one pod, to bytes, a stream, or a destination object."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.dataplane.comm import PodClient
from airflow_ais_etl.dataplane.storage.base import ObjInfo
from airflow_ais_etl.dataplane.storage.opener import open_bucket
from airflow_ais_etl.dataplane.transfer import ObjectTransformer
from airflow_ais_etl.etl.errors import StorageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_ais_etl.cluster.base import Backend, PodEndpoint
    from airflow_ais_etl.etl.msg import InitMsg


def pick_endpoint(endpoints: Sequence[PodEndpoint], obj: str) -> PodEndpoint:
    """Choose the pod for ``obj`` by a stable hash, as a target owns an object by placement."""
    return endpoints[zlib.crc32(obj.encode()) % len(endpoints)]


async def transform_object(
    backend: Backend,
    msg: InitMsg,
    endpoints: Sequence[PodEndpoint],
    src: str,
    obj: str,
    *,
    dst: str | None = None,
    dst_name: str | None = None,
    src_conn_id: str | None = None,
    dst_conn_id: str | None = None,
    timeout: float | None = None,
    etl_args: str = "",
) -> dict[str, Any]:
    """Transform ``obj`` of bucket ``src``; return ``{"data": bytes}`` or write it to ``dst``.

    The returned dict always has ``bytes_in`` and, with ``dst``, a ``summary``. ``etl_args`` reach
    the transform as query ``etl_args`` (protocol 2025).
    """
    bucket = open_bucket(src, conn_id=src_conn_id)
    info = bucket.stat(obj)
    if info is None:
        raise StorageError(f"object {obj!r} does not exist in {bucket.url}")
    endpoint = pick_endpoint(endpoints, obj)
    with backend.grant(msg.name, bucket.url) as ref:  # the pod reads the source only meanwhile
        async with PodClient(request_timeout=timeout) as client:
            transformer = ObjectTransformer(client, msg, bucket, ref, etl_args=etl_args)
            if dst is None:
                data = await transformer.to_bytes(endpoint, info)
                return {"data": data, "bytes_in": info.size}
            out = open_bucket(dst, conn_id=dst_conn_id, create=True)
            name = dst_name or obj
            obj_info = ObjInfo(info.name, info.size, info.version)
            size, _ = await transformer.to_bucket(endpoint, obj_info, out, name)
    summary = {
        "object": obj,
        "src": bucket.url,
        "dst": out.url,
        "dst_name": name,
        "bytes_in": info.size,
        "bytes_out": size,
        "target": endpoint.target_id,
    }
    return {"summary": summary, "bytes_in": info.size}
