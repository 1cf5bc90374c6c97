"""The hook: the only door from Airflow tasks and triggers to the ETL service (:class:`AisEtl`)."""

from __future__ import annotations

import asyncio
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_ais_etl.etl.errors import EtlNotFoundError
from airflow_ais_etl.etl.state import EtlState
from airflow_ais_etl.hooks.health import HealthReport, HealthVerdict, assess
from airflow_ais_etl.hooks.settings import AisEtlSettings, format_link, parse_extras, ui_field_behaviour
from airflow_ais_etl.version_compat import BaseHook

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.base import Backend
    from airflow_ais_etl.service import AisEtl

__all__ = ["AisEtlAsyncHook", "AisEtlHook"]


def make_backend(settings: AisEtlSettings) -> Backend:
    """Build the cluster backend the settings name, configured by every setting of that backend.

    :param settings: the parsed connection
    """
    if settings.backend == "kubernetes":
        from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend

        return KubernetesBackend(**settings.kubernetes_backend_kwargs())
    from airflow_ais_etl.cluster.local.backend import LocalBackend

    return LocalBackend(settings.home)


class AisEtlHook(BaseHook):
    """Reach the ETL service configured by an ``ais_etl`` connection.

    Without the default connection the embedded local backend with its default home is used, so a
    fresh install works with zero configuration.

    :param ais_etl_conn_id: the ``ais_etl`` connection (default ``ais_etl_default``)
    :param settings: settings to use instead of reading the connection (the async hook passes them)
    """

    conn_name_attr = "ais_etl_conn_id"
    default_conn_name = "ais_etl_default"
    conn_type = "ais_etl"
    hook_name = "AIS ETL"

    def __init__(
        self,
        ais_etl_conn_id: str = default_conn_name,
        *,
        settings: AisEtlSettings | None = None,
    ) -> None:
        super().__init__()
        self.ais_etl_conn_id = ais_etl_conn_id
        self._settings = settings

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Describe the connection form (kept equal to the provider info's ``ui-field-behaviour``)."""
        return ui_field_behaviour()

    @cached_property
    def settings(self) -> AisEtlSettings:
        """Return the connection's settings (defaults when the default connection does not exist)."""
        if self._settings is not None:
            return self._settings
        try:
            conn = self.get_connection(self.ais_etl_conn_id)
        except AirflowNotFoundException:
            if self.ais_etl_conn_id != self.default_conn_name:
                raise
            self.log.debug("connection %s is not defined: using the local backend", self.ais_etl_conn_id)
            return AisEtlSettings()
        return parse_extras(conn.extra_dejson)

    @cached_property
    def api(self) -> AisEtl:
        """Return the ETL service over the configured backend."""
        from airflow_ais_etl.service import AisEtl

        return AisEtl(make_backend(self.settings))

    def test_connection(self) -> tuple[bool, str]:
        """Check that the backend answers; for ``local`` list its targets."""
        try:
            targets = self.api.backend.targets()
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        ids = ", ".join(t.id for t in targets)
        where = f" at {self.api.backend.state.home}" if hasattr(self.api.backend, "state") else ""
        return True, f"{self.settings.backend} cluster{where}: {len(targets)} target(s): {ids}"

    def etl_url(self, etl_name: str) -> str:
        """Return the URL that shows ``etl_name``: the link template, else the local state directory."""
        if self.settings.link_template:
            return format_link(self.settings.link_template, etl_name)
        state = getattr(self.api.backend, "state", None)
        if state is None:
            return ""
        return Path(state.etl_dir(etl_name)).resolve().as_uri()

    def check_health(self, name: str) -> HealthReport:
        """Return whether every pod of ``name`` serves; a missing ETL is a ``failed`` verdict."""
        try:
            info = self.api.info(name)
        except EtlNotFoundError as exc:
            return HealthReport(HealthVerdict.FAILED, str(exc))
        if info.state != EtlState.RUNNING:
            return assess(name, info.state, info.cause, [])
        try:
            statuses = self.api.health(name)
        except EtlNotFoundError as exc:  # stopped between the two calls
            return HealthReport(HealthVerdict.WAITING, str(exc))
        return assess(name, info.state, info.cause, statuses)


class AisEtlAsyncHook(BaseHook):
    """Async face of :class:`AisEtlHook` for triggers: the connection is read asynchronously and every
    service call runs in a worker thread, so the triggerer's event loop never blocks.

    :param ais_etl_conn_id: the ``ais_etl`` connection (default ``ais_etl_default``)
    """

    conn_name_attr = AisEtlHook.conn_name_attr
    default_conn_name = AisEtlHook.default_conn_name
    conn_type = AisEtlHook.conn_type
    hook_name = AisEtlHook.hook_name

    def __init__(self, ais_etl_conn_id: str = AisEtlHook.default_conn_name) -> None:
        super().__init__()
        self.ais_etl_conn_id = ais_etl_conn_id
        self._hook: AisEtlHook | None = None

    async def get_settings(self) -> AisEtlSettings:
        """Read the connection without blocking the event loop (defaults when the default one is missing)."""
        try:
            conn = await self.aget_connection(self.ais_etl_conn_id)
        except AirflowNotFoundException:
            if self.ais_etl_conn_id != self.default_conn_name:
                raise
            return AisEtlSettings()
        return parse_extras(conn.extra_dejson)

    async def get_sync_hook(self) -> AisEtlHook:
        """Return the (cached) sync hook built from the asynchronously read settings."""
        if self._hook is None:
            settings = await self.get_settings()
            self._hook = AisEtlHook(self.ais_etl_conn_id, settings=settings)
        return self._hook

    async def check_health(self, name: str) -> HealthReport:
        hook = await self.get_sync_hook()
        return await asyncio.to_thread(hook.check_health, name)

    async def get_api(self) -> AisEtl:
        """Return the ETL service; call it through ``asyncio.to_thread`` (its calls block)."""
        hook = await self.get_sync_hook()
        return await asyncio.to_thread(lambda: hook.api)
