"""The ETL view's FastAPI app, mounted by the api-server under ``/ais-etl``.

Every route sits behind Airflow's auth manager (its own FastAPI dependencies): reading needs read
access to DAGs, stop/start need edit access to DAGs, and the task view needs read access to that
DAG. Pages are plain HTML with a little JavaScript that polls the JSON routes next to them.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import Body, Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

from airflow_ais_etl.cluster.leases import acting_as_user
from airflow_ais_etl.etl.errors import AisEtlError
from airflow_ais_etl.hooks.ais_etl import AisEtlHook
from airflow_ais_etl.plugins import jobs
from airflow_ais_etl.plugins.clusters import Clusters, etl_overview, tail

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["create_app"]

STATIC = {"view.js": "text/javascript", "view.css": "text/css"}
NO_STORE = {"Cache-Control": "no-store"}


def _page(name: str) -> HTMLResponse:
    return HTMLResponse(resources.files(__package__).joinpath("static", name).read_text(), headers=NO_STORE)


def _session() -> Any:
    from airflow.utils.session import create_session

    return create_session()


def _readable_dags(user: Any, session: Session) -> set[str]:
    return set(get_auth_manager().get_authorized_dag_ids(user=user, method="GET", session=session))


def _known_conn_ids(session: Session, recorded: list[dict[str, Any]]) -> list[str]:
    """Return the default connection, every ``ais_etl`` connection in the DB, and those jobs named."""
    from airflow.models.connection import Connection
    from sqlalchemy import select

    ids = {AisEtlHook.default_conn_name}
    ids.update(
        session.scalars(select(Connection.conn_id).where(Connection.conn_type == AisEtlHook.conn_type))
    )
    ids.update(str(r["conn_id"]) for r in recorded if r.get("conn_id"))
    return sorted(ids)


def create_app(clusters: Clusters | None = None) -> FastAPI:
    """Return the app; ``clusters`` gives the ETL services (one per connection)."""
    clusters = clusters or Clusters()
    read = [Depends(requires_access_dag("GET"))]
    edit = [Depends(requires_access_dag("PUT"))]
    app = FastAPI(title="AIS ETL", docs_url=None, redoc_url=None, openapi_url=None)

    def api_of(conn_id: str) -> Any:
        try:
            return clusters.api(conn_id)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc

    @app.get("/openapi.json", dependencies=read, include_in_schema=False)
    def openapi() -> dict[str, Any]:
        """The app's OpenAPI description (behind the login, like every route here)."""
        return app.openapi()

    @app.get("/", dependencies=read, response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return _page("index.html")

    @app.get("/task", dependencies=read, response_class=HTMLResponse)
    def task_page() -> HTMLResponse:
        return _page("task.html")

    @app.get("/static/{name}", dependencies=read)
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, "no such file")
        text = resources.files(__package__).joinpath("static", name).read_text()
        return Response(text, media_type=STATIC[name], headers=NO_STORE)

    @app.get("/api/etls", dependencies=read)
    def etls(user: GetUserDep) -> dict[str, Any]:
        with _session() as session:
            readable = _readable_dags(user, session)
            conn_ids = _known_conn_ids(session, jobs.job_records(session, readable))
        out = []
        for conn_id in conn_ids:
            entry: dict[str, Any] = {"conn_id": conn_id, "etls": [], "error": ""}
            try:
                api = clusters.api(conn_id)
                entry["backend"] = api.backend.kind
                for info in api.list():
                    etl = etl_overview(api, info, conn_id)
                    etl["jobs"], etl["aborts"] = jobs.registry_jobs(api.backend, info.name, readable)
                    entry["etls"].append(etl)
            except Exception as exc:  # one unreachable cluster must not hide the others
                entry["error"] = f"{type(exc).__name__}: {exc}"
            out.append(entry)
        can_edit = get_auth_manager().is_authorized_dag(method="PUT", user=user)
        return {"user": user.get_name(), "can_edit": can_edit, "connections": out}

    @app.get("/api/etls/{name}/logs", dependencies=read)
    def logs(
        name: str, conn_id: str = AisEtlHook.default_conn_name, target_id: str | None = None
    ) -> dict[str, Any]:
        try:
            pods = api_of(conn_id).logs(name, target_id)
        except AisEtlError as exc:
            raise HTTPException(404, str(exc)) from exc
        return {
            "etl": name,
            "conn_id": conn_id,
            "pods": [{**p.to_dict(), "logs": tail(p.logs)} for p in pods],
        }

    def _lifecycle(name: str, conn_id: str, action: str, user: Any) -> dict[str, Any]:
        api = api_of(conn_id)
        try:
            with acting_as_user(str(user.get_name())):  # the jobs a stop aborts name this login
                if action == "stop":
                    api.stop(name)
                else:
                    api.start(name)
            return api.info(name).to_dict()
        except AisEtlError as exc:
            raise HTTPException(409, str(exc)) from exc

    # JSON bodies only: a cross-site form cannot send one without a CORS preflight.
    @app.post("/api/etls/{name}/stop", dependencies=edit)
    def stop(name: str, conn_id: Annotated[str, Body(embed=True)], user: GetUserDep) -> dict[str, Any]:
        return _lifecycle(name, conn_id, "stop", user)

    @app.post("/api/etls/{name}/start", dependencies=edit)
    def start(name: str, conn_id: Annotated[str, Body(embed=True)], user: GetUserDep) -> dict[str, Any]:
        return _lifecycle(name, conn_id, "start", user)

    @app.get("/api/task", dependencies=read)
    def task(
        dag_id: str, run_id: str, task_id: str, map_index: Annotated[str, Query()] = "-1"
    ) -> dict[str, Any]:
        # The UI's tab fills {MAP_INDEX} only for mapped tasks: anything not a number means unmapped.
        index = int(map_index) if map_index.lstrip("-").isdigit() else -1
        with _session() as session:
            record = jobs.task_record(session, dag_id, run_id, task_id, index)
        record["etl"] = None
        task_info = record.get("task") or {}
        if task_info.get("etl"):
            conn_id = str(task_info.get("conn_id") or AisEtlHook.default_conn_name)
            try:
                api = clusters.api(conn_id)
                record["etl"] = etl_overview(api, api.info(str(task_info["etl"])), conn_id)
            except Exception as exc:
                record["etl_error"] = f"{type(exc).__name__}: {exc}"
        return record

    return app
