"""``/v1/buckets``: create, destroy, HEAD and list a bucket (paged, msgpack as the SDK asks), and
start offline transforms (``etl-bck``, ``etl-listrange``) on it."""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.responses import Response
from starlette.routing import Route

from airflow_ais_etl.serve.buckets import parse_bck_path
from airflow_ais_etl.serve.errors import BAD_REQUEST, AisHttpError
from airflow_ais_etl.serve.http import endpoint, json_answer, text_answer
from airflow_ais_etl.serve.jobs import ETL_BCK, ETL_OBJECTS
from airflow_ais_etl.serve.offline import start_transform
from airflow_ais_etl.serve.remotes import normalize_provider

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_ais_etl.dataplane.storage.base import Bucket
    from airflow_ais_etl.serve.http import Call

__all__ = ["bucket_routes"]

MSGPACK = "application/msgpack"
DEFAULT_PAGE = 10_000
"""Objects per list page when the client asks for 0 ("the most"), as AIS's own buckets."""


def _provider(call: Call) -> str:
    return call.query.get("provider", "ais")


def list_page(bucket: Bucket, value: Mapping[str, Any]) -> dict[str, Any]:
    """One page of AIS's ``BucketList``: names after the continuation token, the next token if more."""
    prefix = str(value.get("prefix") or "")
    token = str(value.get("continuation_token") or value.get("start_after") or "")
    size = value.get("pagesize") or DEFAULT_PAGE
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise AisHttpError(BAD_REQUEST, f"pagesize must be a non-negative integer, got {size!r}")
    entries: list[dict[str, Any]] = []
    more = False
    for info in bucket.list(prefix):
        if token and info.name <= token:
            continue
        if len(entries) == size:
            more = True
            break
        entries.append({"n": info.name, "s": info.size, "v": info.version, "f": 0})
    next_token = entries[-1]["n"] if more and entries else ""
    # A listing has an id (AIS: its list job's); the SDK's iterator stops only once it has one.
    list_id = str(value.get("uuid") or "") or secrets.token_hex(8)
    return {
        "UUID": list_id,
        "ContinuationToken": next_token,
        "Flags": 0,
        "Entries": entries,
    }


def get_bucket(call: Call) -> Response:
    """``GET /v1/buckets/B`` with ``{"action": "list"}``: a page of objects."""
    action, value, _ = call.action()
    if action != "list":
        raise AisHttpError(BAD_REQUEST, f"action {action!r} is not supported on GET /v1/buckets (only list)")
    page = list_page(call.ctx.buckets.open(call.params["bck"], _provider(call)), value or {})
    if MSGPACK in call.headers.get("accept", ""):
        return Response(msgspec.msgpack.encode(page), media_type=MSGPACK)
    return json_answer(page)


def head_bucket(call: Call) -> Response:
    name, provider = call.params["bck"], _provider(call)
    call.ctx.buckets.open(name, provider)
    props = {"provider": normalize_provider(provider), "namespace": {"uuid": "", "name": ""}, "name": name}
    return Response(b"", headers={"ais-bucket-props": json.dumps(props)})


def post_bucket(call: Call) -> Response:
    """``POST /v1/buckets/B``: ``create-bck``, ``etl-bck`` (to ``bck_to``) or ``etl-listrange`` (to ``tobck``)."""
    name, provider = call.params["bck"], _provider(call)
    action, value, _ = call.action()
    if action == "create-bck":
        call.ctx.buckets.create(name, provider)
        return text_answer("")
    call.ctx.buckets.check(name, provider)
    src = (provider, name)
    if action == ETL_BCK:
        to_provider, to_name = parse_bck_path(call.query.get("bck_to", ""))
        call.ctx.buckets.check(to_name, to_provider)
        return text_answer(start_transform(call.ctx, ETL_BCK, src, (to_provider, to_name), value).id)
    if action == ETL_OBJECTS:
        if not isinstance(value, dict) or not isinstance(value.get("tobck"), dict):
            raise AisHttpError(BAD_REQUEST, 'etl-listrange needs "tobck": the destination bucket')
        to = value.pop("tobck")
        dst = (str(to.get("provider") or "ais"), str(to.get("name") or ""))
        call.ctx.buckets.check(dst[1], dst[0])
        return text_answer(start_transform(call.ctx, ETL_OBJECTS, src, dst, value).id)
    raise AisHttpError(
        BAD_REQUEST,
        f"action {action!r} is not supported by ais-etl serve (supported: create-bck, etl-bck, etl-listrange)",
    )


def delete_bucket(call: Call) -> Response:
    action, _, _ = call.action()
    if action != "destroy-bck":
        raise AisHttpError(BAD_REQUEST, f"action {action!r} is not supported on DELETE /v1/buckets")
    call.ctx.buckets.destroy(call.params["bck"], _provider(call))
    return text_answer("")


def list_buckets(call: Call) -> Response:
    """Every served bucket; with ``provider=``, that provider's only."""
    none = {"uuid": "", "name": ""}
    wanted = normalize_provider(call.query["provider"]) if call.query.get("provider") else None
    return json_answer(
        [
            {"name": n, "provider": p, "namespace": none}
            for p, n in call.ctx.buckets.names()
            if wanted is None or p == wanted
        ]
    )


def bucket_routes() -> list[Route]:
    return [
        Route("/v1/buckets", endpoint(list_buckets), methods=["GET"]),
        Route("/v1/buckets/", endpoint(list_buckets), methods=["GET"]),
        Route(
            "/v1/buckets/{bck}", endpoint(head_bucket), methods=["HEAD"]
        ),  # before GET: GET routes take HEAD too
        Route("/v1/buckets/{bck}", endpoint(get_bucket), methods=["GET"]),
        Route("/v1/buckets/{bck}", endpoint(post_bucket), methods=["POST"]),
        Route("/v1/buckets/{bck}", endpoint(delete_bucket), methods=["DELETE"]),
    ]
