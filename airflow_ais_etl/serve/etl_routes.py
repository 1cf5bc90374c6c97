"""``/v1/etl``: init (ETLSpecMsg, init code, init spec), list, view, start, stop, delete, logs,
health and metrics, answered in AIS's JSON shapes (see :mod:`~airflow_ais_etl.serve.etlmsg`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from airflow_ais_etl.serve.errors import NOT_FOUND, AisHttpError
from airflow_ais_etl.serve.etlmsg import details_of, info_of, logs_of, parse_init
from airflow_ais_etl.serve.http import endpoint, json_answer, text_answer

if TYPE_CHECKING:
    from starlette.responses import Response

    from airflow_ais_etl.serve.http import Call

__all__ = ["etl_routes"]


def init(call: Call) -> Response:
    """``PUT /v1/etl``: start the ETL on every target; AIS answers with an id as plain text."""
    name, definition = parse_init(call.json())
    call.ctx.api.init(name, definition)
    return text_answer(name)


def list_etls(call: Call) -> Response:
    return json_answer([info_of(info) for info in call.ctx.api.list()])


def view(call: Call) -> Response:
    """``GET /v1/etl/NAME[?uuid=JOB]``: the init message, and that offline job's object errors."""
    name = call.params["name"]
    msg = call.ctx.api.view(name)
    job_id = call.query.get("uuid", "")
    errors = None
    if job_id:
        job = call.ctx.jobs.get(job_id)
        if job is None or name not in job.etl:
            raise AisHttpError(NOT_FOUND, f"job {job_id} of etl job {name} not found")
        errors = job.obj_errors()
    return json_answer(details_of(msg, errors))


def start(call: Call) -> Response:
    call.ctx.api.start(call.params["name"])
    return text_answer("")


def stop(call: Call) -> Response:
    """Stop the pods; the server's own jobs that use the ETL abort (as AIS's do), others' leases refuse."""
    call.ctx.api.stop(call.params["name"])
    return text_answer("")


def delete(call: Call) -> Response:
    call.ctx.api.delete(call.params["name"])
    return text_answer("")


def logs(call: Call) -> Response:
    return json_answer(logs_of(call.ctx.api.logs(call.params["name"], call.params.get("tid") or None)))


def health(call: Call) -> Response:
    return json_answer([status.to_dict() for status in call.ctx.api.health(call.params["name"])])


def metrics(call: Call) -> Response:
    return json_answer([m.to_dict() for m in call.ctx.api.metrics(call.params["name"])])


def etl_routes() -> list[Route]:
    return [
        Route("/v1/etl", endpoint(list_etls), methods=["GET"]),
        Route("/v1/etl", endpoint(init), methods=["PUT"]),
        Route("/v1/etl/{name}", endpoint(view), methods=["GET"]),
        Route("/v1/etl/{name}", endpoint(delete), methods=["DELETE"]),
        Route("/v1/etl/{name}/start", endpoint(start), methods=["POST"]),
        Route("/v1/etl/{name}/stop", endpoint(stop), methods=["POST"]),
        Route("/v1/etl/{name}/logs", endpoint(logs), methods=["GET"]),
        Route("/v1/etl/{name}/logs/{tid}", endpoint(logs), methods=["GET"]),
        Route("/v1/etl/{name}/health", endpoint(health), methods=["GET"]),
        Route("/v1/etl/{name}/metrics", endpoint(metrics), methods=["GET"]),
    ]
