"""Inline transforms: one object through one pod (or a pipeline's pods), to bytes or a destination object."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.dataplane.chain import Chain, open_transformer
from airflow_ais_etl.dataplane.storage.base import ObjInfo
from airflow_ais_etl.dataplane.storage.opener import open_bucket
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
    msg: InitMsg | Sequence[InitMsg],
    endpoints: Sequence[PodEndpoint] | None,
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

    ``msg`` is one ETL or a pipeline's chain (first to last); ``endpoints`` are the first ETL's
    pods (``None``: ask the backend). The returned dict always has ``bytes_in`` and, with ``dst``,
    a ``summary``. ``etl_args`` reach every stage as query ``etl_args`` (protocol 2025).
    """
    chain = Chain.of(msg)
    chain.check()
    etl_args = chain.etl_args(etl_args)
    stage_endpoints = [list(endpoints)] if endpoints and len(chain.msgs) == 1 else chain.endpoints(backend)
    if endpoints:
        stage_endpoints[0] = list(endpoints)
    bucket = open_bucket(src, conn_id=src_conn_id)
    info = bucket.stat(obj)
    if info is None:
        raise StorageError(f"object {obj!r} does not exist in {bucket.url}")
    endpoint = pick_endpoint(stage_endpoints[0], obj)
    with backend.grant(chain.first.name, bucket.url) as ref:  # the pod reads the source only meanwhile
        async with open_transformer(
            chain, bucket, ref, stage_endpoints, request_timeout=timeout, etl_args=etl_args
        ) as transformer:
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
