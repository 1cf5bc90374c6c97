"""A deferrable init on Kubernetes: the triggerer's wait fails fast with the blocking init's diagnosis."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_ais_etl.etl.errors import PodStartError
from airflow_ais_etl.hooks.health import HealthReport, HealthVerdict
from airflow_ais_etl.operators.etl import AisEtlInitSpecOperator
from airflow_ais_etl.triggers.etl import AisEtlHealthTrigger
from tests.kubernetes.test_start_failures import _server_pods, _spec

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from airflow_ais_etl.service import AisEtl
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]


def _ctx() -> dict[str, Any]:
    ti = mock.MagicMock(dag_id="dag-k", task_id="init", run_id="run-k", try_number=1, map_index=-1)
    return {"ti": ti, "run_id": "run-k"}


def test_deferred_init_of_an_image_never_pulled_fails_in_the_trigger_and_leaves_no_pods(
    api: AisEtl, backend: KubernetesBackend, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AIS_ETL_DEFAULT", cluster.ais_etl_conn())
    image = "registry.example/etl/never-pulled:1.0"
    op = AisEtlInitSpecOperator(
        task_id="init",
        etl_name="never-etl",
        spec=_spec(image, imagePullPolicy="Never"),
        timeout="5m",
        deferrable=True,
    )
    starting = HealthReport(HealthVerdict.WAITING, "etl never-etl: pods starting (0s)")
    with (  # the worker's one check sees the pods still starting, so the triggerer diagnoses them
        mock.patch("airflow_ais_etl.operators.etl.start_report", return_value=starting),
        pytest.raises(TaskDeferred) as deferred,
    ):
        op.execute(_ctx())  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, AisEtlHealthTrigger)
    assert _server_pods(backend, "never-etl")  # the worker created them and did not wait

    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    event = asyncio.run(first_event())
    assert event["status"] == "failed"
    assert _server_pods(backend, "never-etl") == []  # removed by the trigger
    with pytest.raises(PodStartError) as err:
        op.execute_complete(_ctx(), event)  # type: ignore[arg-type]
    text = str(err.value)
    assert "container 'server' is waiting with reason ErrImageNeverPull" in text
    assert f"target {err.value.target}, pod {cluster.namespace}/never-etl-node-" in text
    assert f'ErrImageNeverPull: Container image "{image}" is not present with pull policy of Never' in text
    assert "Failed: Error: ErrImageNeverPull" in text
    assert api.info("never-etl").state == "stopped"  # the definition stays recorded; no pod runs
    assert api.leases("never-etl") == []
