"""The operator extra link: the task's job in the provider's ETL view, on the api-server itself.

Airflow 3's UI shows only http(s), mailto and same-origin links, so the link is a path on the
api-server (under ``[api] base_url``'s path), never a ``file://`` URL. It is built from the task
instance key alone: it shows even before the task recorded anything, and it never raises.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

from airflow_ais_etl.version_compat import BaseOperatorLink, conf

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

__all__ = [
    "PLUGIN_PREFIX",
    "TASK_KEY",
    "TASK_TAB",
    "AisEtlLink",
    "airflow_task_tab_url",
    "base_path",
    "task_view_url",
]

log = logging.getLogger(__name__)

PLUGIN_PREFIX = "/ais-etl"
"""Where the api-server mounts the provider's ETL view (its FastAPI app)."""

TASK_TAB = "ais-etl-task"
"""The ``url_route`` of the plugin's tab on Airflow's task instance pages."""

TASK_KEY = "ais_etl_task"
"""XCom key of what a task of the provider worked on: ``{"etl", "conn_id", "dashboard"}``."""


def base_path() -> str:
    """Return the path part of ``[api] base_url`` without a trailing slash (``""`` at the root)."""
    try:
        base = conf.get("api", "base_url", fallback="") or ""
    except Exception:
        return ""
    return urlsplit(base).path.rstrip("/")


def task_view_url(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """Return the same-origin URL of the ETL view of one task instance (its ETL and its job)."""
    query = urlencode({"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "map_index": map_index})
    return f"{base_path()}{PLUGIN_PREFIX}/task?{query}"


def airflow_task_tab_url(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """Return the URL of the "AIS ETL job" tab on Airflow's own page of one task instance."""
    mapped = f"/mapped/{map_index}" if map_index >= 0 else ""
    path = "/".join(quote(part, safe="") for part in ("dags", dag_id, "runs", run_id, "tasks", task_id))
    return f"{base_path()}/{path}{mapped}/plugin/{TASK_TAB}"


class AisEtlLink(BaseOperatorLink):
    """Link a task to its ETL and job in the provider's view (the ``AIS ETL`` button)."""

    name = "AIS ETL"
    key: ClassVar[str] = "ais_etl_link"

    @property
    def xcom_key(self) -> str:
        """Where Airflow keeps the link's URL (it stores ``get_link`` there when the task ends)."""
        return self.key

    @classmethod
    def persist(
        cls, context: Context | dict[str, Any], etl_name: str, conn_id: str, dashboard: str = ""
    ) -> None:
        """Record which ETL (on which connection) the task works on, and show the link while it runs."""
        ti = context.get("ti")
        if ti is None:
            return
        ti.xcom_push(key=TASK_KEY, value={"etl": etl_name, "conn_id": conn_id, "dashboard": dashboard})
        map_index = getattr(ti, "map_index", -1)
        url = task_view_url(ti.dag_id, ti.run_id, ti.task_id, map_index if isinstance(map_index, int) else -1)
        ti.xcom_push(key=cls.key, value=url)

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """Return the task view's URL (``""`` only if the key cannot be read)."""
        try:
            return task_view_url(ti_key.dag_id, ti_key.run_id, ti_key.task_id, int(ti_key.map_index))
        except Exception:
            log.debug("cannot build the %s link of %s", self.name, ti_key, exc_info=True)
            return ""
