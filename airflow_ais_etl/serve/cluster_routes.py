"""``/v1/cluster`` (job status, snapshots, abort), ``/v1/daemon?what=smap`` and ``/v1/health``.

The server presents itself as a one-proxy, one-target cluster map whose URLs point back at itself,
so SDK calls that look for "the target of an object" come back here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from airflow_ais_etl.serve.errors import BAD_REQUEST, NOT_FOUND, AisHttpError
from airflow_ais_etl.serve.http import endpoint, json_answer, text_answer
from airflow_ais_etl.serve.jobs import NODE

if TYPE_CHECKING:
    from starlette.responses import Response

    from airflow_ais_etl.serve.http import Call
    from airflow_ais_etl.serve.jobs import Job

__all__ = ["cluster_routes"]


def _job_args(call: Call) -> tuple[str, str]:
    """``(id, kind)`` of AIS's ``JobArgs`` body (``ID``/``Kind``; ``kind`` in a ``JobQuery``)."""
    args = call.json() or {}
    if not isinstance(args, dict):
        raise AisHttpError(BAD_REQUEST, 'expected job arguments: {"ID": ..., "Kind": ...}')
    return str(args.get("ID") or ""), str(args.get("Kind") or args.get("kind") or "")


def _jobs(call: Call, job_id: str, kind: str) -> list[Job]:
    jobs = call.ctx.jobs.find(job_id, kind)
    if job_id and not jobs:
        raise AisHttpError(NOT_FOUND, f"job {job_id} not found")
    return jobs


def _smap(call: Call) -> dict[str, Any]:
    url = f"{call.headers.get('x-forwarded-proto', 'http')}://{call.headers.get('host', '127.0.0.1')}"
    host, _, port = call.headers.get("host", "127.0.0.1").rpartition(":")
    net = {"node_hostname": host, "daemon_port": port, "direct_url": url}

    def node(kind: str) -> dict[str, Any]:
        return {"daemon_id": NODE, "daemon_type": kind, "public_net": net, "flags": 0, "id_digest": 0}

    return {
        "tmap": {NODE: node("target")},
        "pmap": {NODE: node("proxy")},
        "proxy_si": node("proxy"),
        "version": 1,
    }


def get_cluster(call: Call) -> Response:
    what = call.query.get("what", "")
    if what == "smap":
        return json_answer(_smap(call))
    job_id, kind = _job_args(call)
    if what == "status":
        if not job_id:
            raise AisHttpError(BAD_REQUEST, "job status needs the job's ID")
        return json_answer(_jobs(call, job_id, kind)[0].status())
    if what == "qryxstats":
        return json_answer({NODE: [job.snap() for job in _jobs(call, job_id, kind)]})
    if what == "status_all":
        return json_answer([job.status() for job in _jobs(call, job_id, kind)])
    if what == "running_all":
        return json_answer([f"{j.kind}[{j.id}]" for j in call.ctx.jobs.find(job_id, kind, running_only=True)])
    raise AisHttpError(BAD_REQUEST, f"what={what!r} is not supported by ais-etl serve")


def put_cluster(call: Call) -> Response:
    """``PUT /v1/cluster`` ``{"action": "stop", "value": JobArgs}``: abort jobs (the SDK's ``job.abort()``)."""
    action, value, _ = call.action()
    if action != "stop":
        raise AisHttpError(
            BAD_REQUEST, f"cluster action {action!r} is not supported (only stop: abort a job)"
        )
    value = value if isinstance(value, dict) else {}
    job_id, kind = str(value.get("ID") or ""), str(value.get("Kind") or "")
    if not job_id and not kind:
        raise AisHttpError(BAD_REQUEST, "give the job's ID or kind to abort")
    _jobs(call, job_id, kind)
    call.ctx.jobs.abort(job_id, kind)
    return text_answer("")


def health(call: Call) -> Response:
    return text_answer("")


def cluster_routes() -> list[Route]:
    return [
        Route("/v1/cluster", endpoint(get_cluster), methods=["GET"]),
        Route("/v1/cluster", endpoint(put_cluster), methods=["PUT"]),
        Route("/v1/daemon", endpoint(get_cluster), methods=["GET"]),
        Route("/v1/health", endpoint(health), methods=["GET"]),
    ]
