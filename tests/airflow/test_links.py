from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest

from airflow_ais_etl.links.etl import TASK_KEY, AisEtlLink, airflow_task_tab_url, base_path, task_view_url
from airflow_ais_etl.operators.etl import AisEtlInitCodeOperator, AisEtlInitSpecOperator, AisEtlStopOperator
from airflow_ais_etl.operators.transform import AisEtlBucketTransformOperator, AisEtlObjectTransformOperator
from airflow_ais_etl.sensors.etl import AisEtlHealthSensor

RUN = "manual__2026-01-02T03:04:05+00:00"


def _key(map_index: int = -1) -> SimpleNamespace:
    return SimpleNamespace(dag_id="d1", run_id=RUN, task_id="transform", map_index=map_index, try_number=1)


def test_link_is_a_same_origin_path_to_the_task_view() -> None:
    url = AisEtlLink().get_link(mock.MagicMock(), ti_key=_key())  # type: ignore[arg-type]
    assert url == (
        "/ais-etl/task?dag_id=d1&run_id=manual__2026-01-02T03%3A04%3A05%2B00%3A00&task_id=transform&map_index=-1"
    )
    assert url.startswith("/")  # Airflow's UI shows only http(s), mailto and same-origin links
    assert AisEtlLink().get_link(mock.MagicMock(), ti_key=_key(3)).endswith("map_index=3")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("base_url", "prefix"),
    [("", ""), ("http://h:8080", ""), ("https://h/airflow/", "/airflow"), ("https://h/a/b", "/a/b")],
)
def test_link_follows_the_api_servers_base_path(
    base_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", base_url)
    assert base_path() == prefix
    assert task_view_url("d", "r", "t").startswith(f"{prefix}/ais-etl/task?dag_id=d&")
    assert airflow_task_tab_url("d", RUN, "t", 2) == (
        f"{prefix}/dags/d/runs/manual__2026-01-02T03%3A04%3A05%2B00%3A00/tasks/t/mapped/2/plugin/ais-etl-task"
    )


def test_get_link_never_raises() -> None:
    assert AisEtlLink().get_link(mock.MagicMock(), ti_key=object()) == ""  # type: ignore[arg-type]


def test_persist_records_the_etl_and_shows_the_link_while_the_task_runs() -> None:
    ti = mock.MagicMock(dag_id="d1", run_id=RUN, task_id="transform", map_index=-1)
    AisEtlLink.persist({"ti": ti}, "etl-a", "my_conn", "https://dash/etl-a")
    assert ti.xcom_push.call_args_list == [
        mock.call(
            key=TASK_KEY, value={"etl": "etl-a", "conn_id": "my_conn", "dashboard": "https://dash/etl-a"}
        ),
        mock.call(key="ais_etl_link", value=task_view_url("d1", RUN, "transform")),
    ]
    assert AisEtlLink().xcom_key == "ais_etl_link"
    AisEtlLink.persist({}, "etl-a", "my_conn")  # no task instance (a bare context): nothing to record


def test_link_is_on_every_task_of_the_provider() -> None:
    for cls in (
        AisEtlInitCodeOperator,
        AisEtlInitSpecOperator,
        AisEtlBucketTransformOperator,
        AisEtlObjectTransformOperator,
        AisEtlStopOperator,
        AisEtlHealthSensor,
    ):
        assert any(isinstance(link, AisEtlLink) for link in cls.operator_extra_links), cls
