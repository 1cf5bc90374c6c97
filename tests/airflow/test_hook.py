from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import pytest
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_ais_etl.cluster.base import HealthStatus
from airflow_ais_etl.hooks.ais_etl import AisEtlAsyncHook, AisEtlHook
from airflow_ais_etl.hooks.health import FAILED, HEALTHY, WAITING, assess
from airflow_ais_etl.hooks.settings import AisEtlSettings, format_link, parse_extras

if TYPE_CHECKING:
    from pathlib import Path


def _set_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, extra: dict) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "ais_etl", "extra": extra})
    )


def test_parse_extras_defaults_and_values() -> None:
    assert parse_extras({}) == AisEtlSettings()
    s = parse_extras(
        {
            "backend": "Kubernetes",
            "home": " /x ",
            "namespace": "ais",
            "node_selector": "role=ais, zone = a",
            "extra__ais_etl__link_template": "https://g/d?etl={etl_name}",
        }
    )
    assert s.backend == "kubernetes"
    assert s.home == "/x"
    assert s.namespace == "ais"
    assert s.node_selector == {"role": "ais", "zone": "a"}
    assert s.link_template == "https://g/d?etl={etl_name}"
    assert parse_extras({"node_selector": '{"a": 1}'}).node_selector == {"a": "1"}


@pytest.mark.parametrize(
    ("extras", "error"),
    [
        ({"backend": "docker"}, ValueError),
        ({"link_template": "https://g/{other}"}, ValueError),
        ({"node_selector": "novalue"}, ValueError),
        ({"node_selector": "{bad json"}, ValueError),
        ({"home": 3}, TypeError),
    ],
)
def test_parse_extras_rejects(extras: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_extras(extras)


def test_format_link() -> None:
    assert format_link("https://g/d?var-etl={etl_name}", "my-etl") == "https://g/d?var-etl=my-etl"


def test_missing_default_connection_means_local_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_AIS_ETL_DEFAULT", raising=False)
    monkeypatch.setenv("AIS_ETL_HOME", str(tmp_path / "h"))
    hook = AisEtlHook()
    assert hook.settings == AisEtlSettings()
    ok, message = hook.test_connection()
    assert ok, message
    assert "2 target(s): t1, t2" in message
    assert str(tmp_path / "h") in message


def test_missing_named_connection_is_an_error() -> None:
    with pytest.raises(AirflowNotFoundException):
        _ = AisEtlHook("no_such_conn").settings


def test_connection_extras_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _set_conn(monkeypatch, "my_ais", {"home": str(tmp_path / "home2")})
    hook = AisEtlHook("my_ais")
    assert hook.api.backend.state.home == tmp_path / "home2"
    assert hook.etl_url("etl-one") == (tmp_path / "home2" / "etls" / "etl-one").as_uri()
    _set_conn(monkeypatch, "with_link", {"link_template": "https://g/d?var-etl={etl_name}"})
    assert AisEtlHook("with_link").etl_url("etl-one") == "https://g/d?var-etl=etl-one"


def test_kubernetes_backend_connection_is_tested_through_the_emulator(
    monkeypatch: pytest.MonkeyPatch, kubernetes_conn_env: str
) -> None:
    _set_conn(
        monkeypatch,
        "k8s_ais",
        {
            "backend": "kubernetes",
            "kubernetes_conn_id": kubernetes_conn_env,
            "node_selector": "airflow-ais-etl/target=true",
        },
    )
    ok, message = AisEtlHook("k8s_ais").test_connection()
    assert ok, message
    assert "kubernetes cluster" in message
    assert "2 target(s): node-a, node-b" in message


def test_kubernetes_backend_without_its_kubernetes_connection_fails_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _set_conn(monkeypatch, "k8s_ais", {"backend": "kubernetes", "kubernetes_conn_id": "no_such_k8s_conn"})
    ok, message = AisEtlHook("k8s_ais").test_connection()
    assert not ok
    assert "no_such_k8s_conn" in message


def test_check_health_of_missing_etl_fails(tmp_path: Path) -> None:
    hook = AisEtlHook(settings=AisEtlSettings(home=str(tmp_path)))
    report = hook.check_health("missing-etl")
    assert report.status == FAILED
    assert "does not exist" in report.message


def test_async_hook_reads_connection_and_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _set_conn(monkeypatch, "async_ais", {"home": str(tmp_path)})
    hook = AisEtlAsyncHook("async_ais")
    report = asyncio.run(hook.check_health("missing-etl"))
    assert report.status == FAILED
    assert asyncio.run(hook.get_settings()).home == str(tmp_path)


def test_assess_verdicts() -> None:
    ok = HealthStatus("t1", "p1", "Running")
    sick = HealthStatus("t2", "p2", "NotReady", "connection refused")
    assert assess("e", "running", "", [ok, ok]).status == HEALTHY
    report = assess("e", "running", "", [ok, sick])
    assert report.status == WAITING
    assert "t2/p2: NotReady (connection refused)" in report.message
    assert assess("e", "stopped", "", []).status == WAITING
    assert assess("e", "running", "", []).status == WAITING
    aborted = assess("e", "aborted", "target t2 left", [])
    assert aborted.status == FAILED
    assert "target t2 left" in aborted.message
