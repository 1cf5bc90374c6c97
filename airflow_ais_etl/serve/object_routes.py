"""``/v1/objects/B/O``: GET (plain, or transformed inline with ``etl_name``/``etl_args``/``etl_pipeline``
as the SDK's ``ETLConfig`` sends them), HEAD, PUT and DELETE of one object in a served bucket (a
directory or a configured object-store bucket: one code path through the ``Bucket`` contract).

Errors name objects as ``PROVIDER://B/O`` (what the SDK parses), never the directory or URL behind them.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from airflow_ais_etl.etl.errors import StorageError
from airflow_ais_etl.serve.errors import NOT_FOUND, AisHttpError
from airflow_ais_etl.serve.http import endpoint, text_answer
from airflow_ais_etl.serve.ranges import cut, parse_range

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_ais_etl.dataplane.storage.base import Bucket, ObjInfo
    from airflow_ais_etl.serve.http import Call

__all__ = ["object_routes"]

OCTETS = "application/octet-stream"


@contextlib.contextmanager
def _ais_names(bucket: Bucket, url: str) -> Iterator[None]:
    """Reword storage errors with the bucket's AIS name instead of its directory or URL."""
    try:
        yield
    except StorageError as exc:
        raise type(exc)(str(exc).replace(bucket.url, url)) from None


def _provider(call: Call) -> str:
    return call.query.get("provider", "ais")


def _open(call: Call) -> tuple[Bucket, str, str]:
    name, provider = call.params["bck"], _provider(call)
    bucket = call.ctx.buckets.open(name, provider)
    return bucket, call.ctx.buckets.url(name, provider), call.params["obj"]


def _stat(bucket: Bucket, url: str, obj: str) -> ObjInfo:
    with _ais_names(bucket, url):
        info = bucket.stat(obj)
    if info is None:
        raise AisHttpError(NOT_FOUND, f"{url}/{obj} does not exist")
    return info


def _headers(url: str, info: ObjInfo) -> dict[str, str]:
    return {
        "ais-name": info.name,
        "ais-bucket-name": url.partition("://")[2],
        "ais-bucket-provider": url.partition("://")[0],
        "ais-version": info.version,
        "ais-present": "true",
        "ais-checksum-type": "none",
        "ais-checksum-value": "",
    }


def get_object(call: Call) -> Response:
    """The object's bytes, or its transform when ``etl_name`` is given (pipeline: ``etl_pipeline=b,c``)."""
    bucket, url, obj = _open(call)
    info = _stat(bucket, url, obj)
    etl = call.query.get("etl_name", "")
    if not etl:
        with _ais_names(bucket, url):
            path = bucket.local_path(obj)
        if path is not None:
            return FileResponse(path, headers=_headers(url, info), media_type=OCTETS)
        return _stream(call, bucket, url, info)
    names = [etl, *(n for n in call.query.get("etl_pipeline", "").split(",") if n)]
    src, conn_id = call.ctx.buckets.location(call.params["bck"], _provider(call))
    with _ais_names(bucket, url):
        data = call.ctx.api.transform_object(
            names, src, obj, src_conn_id=conn_id, etl_args=call.query.get("etl_args", "")
        )
    assert isinstance(data, bytes)
    return Response(data, media_type=OCTETS)


def _chunks(bucket: Bucket, url: str, obj: str) -> Iterator[bytes]:
    with _ais_names(bucket, url):
        yield from bucket.read_chunks(obj)


def _stream(call: Call, bucket: Bucket, url: str, info: ObjInfo) -> Response:
    """An object-store object's bytes, whole or one range (a directory's object is sent as a file)."""
    headers = _headers(url, info)
    chunks = _chunks(bucket, url, info.name)
    if "range" not in call.headers:
        headers["content-length"] = str(info.size)
        return StreamingResponse(chunks, headers=headers, media_type=OCTETS)
    start, end = parse_range(call.headers["range"], info.size)
    headers["content-length"] = str(end - start)
    headers["content-range"] = f"bytes {start}-{end - 1}/{info.size}"
    return StreamingResponse(cut(chunks, start, end), status_code=206, headers=headers, media_type=OCTETS)


def head_object(call: Call) -> Response:
    bucket, url, obj = _open(call)
    info = _stat(bucket, url, obj)
    return Response(b"", headers={**_headers(url, info), "content-length": str(info.size)})


def put_object(call: Call) -> Response:
    bucket, url, obj = _open(call)
    with _ais_names(bucket, url), bucket.writer(obj) as writer:  # atomic: complete or absent
        for chunk in call.chunks():
            writer.write(chunk)
    return text_answer("")


def delete_object(call: Call) -> Response:
    bucket, url, obj = _open(call)
    with _ais_names(bucket, url):
        existed = bucket.delete(obj)
    if not existed:
        raise AisHttpError(NOT_FOUND, f"{url}/{obj} does not exist")
    return text_answer("")


def object_routes() -> list[Route]:
    path = "/v1/objects/{bck}/{obj:path}"
    return [
        Route(path, endpoint(head_object), methods=["HEAD"]),  # before GET: GET routes take HEAD too
        Route(path, endpoint(get_object), methods=["GET"]),
        Route(path, endpoint(put_object, read_body=False), methods=["PUT"]),
        Route(path, endpoint(delete_object), methods=["DELETE"]),
    ]
