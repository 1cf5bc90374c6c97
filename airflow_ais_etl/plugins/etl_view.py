"""The Airflow plugin that puts the ETL view into the UI (registered by the ``airflow.plugins`` entry point).

The api-server mounts the FastAPI app at ``/ais-etl``; the UI gets an "AIS ETL" entry in its
navigation and an "AIS ETL job" tab on task instances, both showing that app in a frame.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_ais_etl.links.etl import PLUGIN_PREFIX, TASK_TAB, base_path

__all__ = ["AisEtlPlugin"]


def _app() -> Any:
    from airflow_ais_etl.plugins.app import create_app

    return create_app()


class AisEtlPlugin(AirflowPlugin):
    """The ETL view: ETLs, pods, logs, jobs with live progress, abort history, stop/start."""

    name = "ais_etl"

    @cached_property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """Built on first use (by the api-server only): other components never import FastAPI code."""
        return [{"app": _app(), "url_prefix": PLUGIN_PREFIX, "name": "AIS ETL"}]

    # The UI frames these URLs as given: they carry the path of [api] base_url, like the extra link.
    external_views = [
        {
            "name": "AIS ETL",
            "href": f"{base_path()}{PLUGIN_PREFIX}/",
            "destination": "nav",
            "url_route": "ais-etl",
        },
        {
            "name": "AIS ETL job",
            "href": f"{base_path()}{PLUGIN_PREFIX}/task?dag_id={{DAG_ID}}&run_id={{RUN_ID}}&task_id={{TASK_ID}}"
            "&map_index={MAP_INDEX}",
            "destination": "task_instance",
            "url_route": TASK_TAB,
        },
    ]
