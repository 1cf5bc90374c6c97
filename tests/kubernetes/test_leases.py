"""Leases on the Kubernetes backend: kept in the shared ConfigMap, so every worker sees them."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.cluster.kubernetes.state import MD_CONFIGMAP
from airflow_ais_etl.cluster.leases import acting_as
from airflow_ais_etl.etl.leases import EtlInUseError
from airflow_ais_etl.etl.origin import Origin
from tests.kubernetes.conftest import UPPER

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from airflow_ais_etl.service import AisEtl

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]


def _run(run_id: str, task_id: str) -> Origin:
    return Origin(dag_id="k8s_dag", task_id=task_id, run_id=run_id, try_number="1", map_index="-1")


def test_a_stop_leaves_an_etl_that_another_run_holds_and_the_lease_lives_in_the_configmap(
    api: AisEtl, backend: KubernetesBackend
) -> None:
    api.init_code("lease-etl", UPPER)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with acting_as(_run("run-b", "transform_bucket")), api.lease("lease-etl"):
            held.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        stored = json.loads(backend.kube.read_config_map(MD_CONFIGMAP)["data"]["leases"])
        (lease,) = stored["lease-etl"].values()
        assert lease["holder"]["run_id"] == "run-b"
        with acting_as(_run("run-a", "stop_etl")), pytest.raises(EtlInUseError, match="of run run-b"):
            api.stop("lease-etl")
        assert api.info("lease-etl").state == "running"
    finally:
        release.set()
        holder.join(30)
    assert api.leases("lease-etl") == []
    with acting_as(_run("run-a", "stop_etl")):
        assert api.stop("lease-etl") is True
