"""Run the example DAGs with ``dag.test()`` against the Kubernetes backend (an ``ais_etl`` connection in env)."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import pytest

from tests.airflow.conftest import EXAMPLE_DAGS, _airflow_home_cleanup, airflow_db  # noqa: F401

if TYPE_CHECKING:
    from pathlib import Path

    from airflow.sdk import DAG

    from airflow_ais_etl.cluster.kubernetes import KubernetesBackend
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes, pytest.mark.usefixtures("airflow_db")]


@pytest.fixture(autouse=True)
def _ais_etl_conn(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AIS_ETL_DEFAULT", cluster.ais_etl_conn())


def _dag(name: str) -> DAG:
    spec = importlib.util.spec_from_file_location(f"ais_etl_k8s_example_{name}", EXAMPLE_DAGS / f"{name}.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def _states(dr: Any) -> dict[tuple[str, int], str]:
    return {
        (ti.task_id, ti.map_index): str(getattr(ti.state, "value", ti.state))
        for ti in dr.get_task_instances()
    }


def _objects(bucket: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(bucket)): p
        for p in sorted(bucket.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(bucket).parts)
    }


def test_offline_example(cluster: Cluster, backend: KubernetesBackend) -> None:
    src, dst = cluster.work / "src", cluster.work / "dst"
    dr = _dag("example_ais_etl_offline").test(run_conf={"src": str(src), "dst": str(dst), "num_objects": 12})
    assert str(dr.state) == "success", _states(dr)
    assert set(_states(dr).values()) == {"success"}
    sources, results = _objects(src), _objects(dst)
    assert sorted(results) == sorted(sources)
    assert len(results) == 12
    for name, path in results.items():
        assert path.read_bytes() == sources[name].read_bytes().upper()
    assert backend.endpoints("example-offline") == []


def test_spec_example(cluster: Cluster, backend: KubernetesBackend) -> None:
    src, dst, one = cluster.work / "src", cluster.work / "dst", cluster.work / "one.txt"
    dr = _dag("example_ais_etl_spec").test(
        run_conf={"src": str(src), "dst": str(dst), "local_file": str(one)}
    )
    assert str(dr.state) == "success", _states(dr)
    assert set(_states(dr).values()) == {"success"}
    sources, results = _objects(src), _objects(dst)
    assert sorted(results) == sorted(sources)
    for name, path in results.items():
        assert path.read_bytes() == sources[name].read_bytes().upper()
    assert one.read_bytes() == b"HELLO FROM OBJECT 0\n"
    assert backend.endpoints("example-spec") == []


def test_mapped_example(cluster: Cluster, backend: KubernetesBackend) -> None:
    src, dst = cluster.work / "src", cluster.work / "dst"
    dr = _dag("example_ais_etl_mapped").test(run_conf={"src": str(src), "dst": str(dst), "shards": 3})
    states = _states(dr)
    assert str(dr.state) == "success", states
    assert set(states.values()) == {"success"}
    sources, results = _objects(src), _objects(dst)
    assert sorted(results) == sorted(sources)
    for name, path in results.items():
        lines = sources[name].read_bytes().splitlines(keepends=True)
        assert path.read_bytes() == b"".join(reversed(lines))
