"""The hook: the only door from Airflow tasks and triggers to the ETL service (:class:`AisEtl`)."""

from __future__ import annotations

import asyncio
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_ais_etl.etl.errors import EtlNotFoundError
from airflow_ais_etl.hooks.health import WAITING, HealthReport, assess
from airflow_ais_etl.hooks.settings import AisEtlSettings, format_link, parse_extras, ui_field_behaviour
from airflow_ais_etl.version_compat import BaseHook

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_ais_etl.cluster.base import Backend, HealthStatus, PodLogs, PodMetrics
    from airflow_ais_etl.dataplane.engine import JobControl, OfflineOptions
    from airflow_ais_etl.etl.msg import InitMsg
    from airflow_ais_etl.etl.podspec import Target
    from airflow_ais_etl.service import AisEtl, EtlInfo

__all__ = ["AisEtlAsyncHook", "AisEtlHook"]


def make_backend(settings: AisEtlSettings, extras: Mapping[str, Any] | None = None) -> Backend:
    """Build the cluster backend the settings name.

    :param settings: the parsed connection
    :param extras: the raw connection extras (the kubernetes backend reads its own options there)
    """
    if settings.backend == "kubernetes":
        from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend, backend_kwargs_from_extras

        return KubernetesBackend(
            settings.kubernetes_conn_id,
            settings.namespace,
            settings.node_selector,
            **backend_kwargs_from_extras(extras),
        )
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
        extras: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.ais_etl_conn_id = ais_etl_conn_id
        self._settings = settings
        self._extras: Mapping[str, Any] | None = extras

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
        self._extras = conn.extra_dejson
        return parse_extras(conn.extra_dejson)

    @cached_property
    def api(self) -> AisEtl:
        """Return the ETL service over the configured backend."""
        from airflow_ais_etl.service import AisEtl

        settings = self.settings
        return AisEtl(make_backend(settings, self._extras))

    def test_connection(self) -> tuple[bool, str]:
        """Check that the backend answers; for ``local`` list its targets."""
        try:
            targets = self.targets()
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

    # ------------------------------------------------------------------ thin service calls
    def targets(self) -> list[Target]:
        return self.api.backend.targets()

    def init_code(self, name: str, code: str, **kwargs: Any) -> EtlInfo:
        return self.api.init_code(name, code, **kwargs)

    def init_spec(self, name: str, spec: str, **kwargs: Any) -> EtlInfo:
        return self.api.init_spec(name, spec, **kwargs)

    def start(self, name: str) -> EtlInfo:
        return self.api.start(name)

    def stop(self, name: str) -> bool:
        return self.api.stop(name)

    def stop_all(self) -> list[str]:
        return self.api.stop_all()

    def delete(self, name: str, *, force: bool = False) -> None:
        self.api.delete(name, force=force)

    def view(self, name: str) -> InitMsg:
        return self.api.view(name)

    def info(self, name: str) -> EtlInfo:
        return self.api.info(name)

    def list_etls(self) -> list[EtlInfo]:
        return self.api.list()

    def health(self, name: str) -> list[HealthStatus]:
        return self.api.health(name)

    def metrics(self, name: str) -> list[PodMetrics]:
        return self.api.metrics(name)

    def logs(self, name: str, target_id: str | None = None) -> list[PodLogs]:
        return self.api.logs(name, target_id)

    def transform_object(self, name: str, src: str, obj: str, **kwargs: Any) -> bytes | dict[str, Any]:
        return self.api.transform_object(name, src, obj, **kwargs)

    def transform_bucket(
        self,
        name: str,
        src: str,
        dst: str,
        options: OfflineOptions | None = None,
        *,
        progress: Callable[[dict[str, Any]], None] | None = None,
        control: JobControl | None = None,
        src_conn_id: str | None = None,
        dst_conn_id: str | None = None,
    ) -> dict[str, Any]:
        return self.api.transform_bucket(
            name,
            src,
            dst,
            options,
            progress=progress,
            control=control,
            src_conn_id=src_conn_id,
            dst_conn_id=dst_conn_id,
        )

    def check_health(self, name: str) -> HealthReport:
        """Return whether every pod of ``name`` serves; a missing ETL is a ``failed`` verdict."""
        try:
            info = self.api.info(name)
        except EtlNotFoundError as exc:
            return HealthReport("failed", str(exc))
        if info.state != "running":
            return assess(name, info.state, info.cause, [])
        try:
            statuses = self.api.health(name)
        except EtlNotFoundError as exc:  # stopped between the two calls
            return HealthReport(WAITING, str(exc))
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
        self._extras: Mapping[str, Any] | None = None

    async def get_settings(self) -> AisEtlSettings:
        """Read the connection without blocking the event loop (defaults when the default one is missing)."""
        try:
            conn = await self.aget_connection(self.ais_etl_conn_id)
        except AirflowNotFoundException:
            if self.ais_etl_conn_id != self.default_conn_name:
                raise
            return AisEtlSettings()
        self._extras = conn.extra_dejson
        return parse_extras(conn.extra_dejson)

    async def get_sync_hook(self) -> AisEtlHook:
        """Return the (cached) sync hook built from the asynchronously read settings."""
        if self._hook is None:
            settings = await self.get_settings()
            self._hook = AisEtlHook(self.ais_etl_conn_id, settings=settings, extras=self._extras)
        return self._hook

    async def check_health(self, name: str) -> HealthReport:
        hook = await self.get_sync_hook()
        return await asyncio.to_thread(hook.check_health, name)

    async def info(self, name: str) -> EtlInfo:
        hook = await self.get_sync_hook()
        return await asyncio.to_thread(hook.info, name)

    async def health(self, name: str) -> list[HealthStatus]:
        hook = await self.get_sync_hook()
        return await asyncio.to_thread(hook.health, name)

    async def stop(self, name: str) -> bool:
        hook = await self.get_sync_hook()
        return await asyncio.to_thread(hook.stop, name)
