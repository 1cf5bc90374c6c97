"""Run the example DAGs with ``dag.test()`` against the Kubernetes backend (an ``ais_etl`` connection in env)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.airflow.conftest import _airflow_home_cleanup, airflow_db  # noqa: F401
from tests.dag_runs import example_dag, task_states, visible_objects

if TYPE_CHECKING:
    from airflow.sdk import DAG

    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes, pytest.mark.usefixtures("airflow_db")]


@pytest.fixture(autouse=True)
def _ais_etl_conn(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AIS_ETL_DEFAULT", cluster.ais_etl_conn())


def k8s_dag(name: str) -> DAG:
    return example_dag(name, "ais_etl_k8s_example")


def test_offline_example(cluster: Cluster, backend: KubernetesBackend) -> None:
    src, dst = cluster.work / "src", cluster.work / "dst"
    dr = k8s_dag("example_ais_etl_offline").test(
        run_conf={"src": str(src), "dst": str(dst), "num_objects": 12}
    )
    assert str(dr.state) == "success", task_states(dr)
    assert set(task_states(dr).values()) == {"success"}
    sources, results = visible_objects(src), visible_objects(dst)
    assert sorted(results) == sorted(sources)
    assert len(results) == 12
    for name, path in results.items():
        assert path.read_bytes() == sources[name].read_bytes().upper()
    assert backend.endpoints("example-offline") == []


def test_spec_example(cluster: Cluster, backend: KubernetesBackend) -> None:
    src, dst, one = cluster.work / "src", cluster.work / "dst", cluster.work / "one.txt"
    dr = k8s_dag("example_ais_etl_spec").test(
        run_conf={"src": str(src), "dst": str(dst), "local_file": str(one)}
    )
    assert str(dr.state) == "success", task_states(dr)
    assert set(task_states(dr).values()) == {"success"}
    sources, results = visible_objects(src), visible_objects(dst)
    assert sorted(results) == sorted(sources)
    for name, path in results.items():
        assert path.read_bytes() == sources[name].read_bytes().upper()
    assert one.read_bytes() == b"HELLO FROM OBJECT 0\n"
    assert backend.endpoints("example-spec") == []


def test_mapped_example(cluster: Cluster, backend: KubernetesBackend) -> None:
    src, dst = cluster.work / "src", cluster.work / "dst"
    dr = k8s_dag("example_ais_etl_mapped").test(run_conf={"src": str(src), "dst": str(dst), "shards": 3})
    states = task_states(dr)
    assert str(dr.state) == "success", states
    assert set(states.values()) == {"success"}
    sources, results = visible_objects(src), visible_objects(dst)
    assert sorted(results) == sorted(sources)
    for name, path in results.items():
        lines = sources[name].read_bytes().splitlines(keepends=True)
        assert path.read_bytes() == b"".join(reversed(lines))
