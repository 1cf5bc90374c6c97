"""Run every example DAG with ``dag.test()`` on the real local backend (real processes, real files)."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING
from unittest import mock

import pytest

from airflow_ais_etl.cluster.local.backend import LocalBackend
from airflow_ais_etl.hooks.ais_etl import AisEtlHook
from airflow_ais_etl.operators.transform import AisEtlBucketTransformOperator
from tests.dag_runs import example_dag, task_states, visible_objects

if TYPE_CHECKING:
    from pathlib import Path


pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db")]


def test_offline_example(ais_home: Path, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    dr = example_dag("example_ais_etl_offline").test(
        run_conf={"src": str(src), "dst": str(dst), "num_objects": 12}
    )
    assert str(dr.state) == "success"
    assert set(task_states(dr).values()) == {"success"}
    assert len(task_states(dr)) == 6
    sources, results = visible_objects(src), visible_objects(dst)
    assert sorted(results) == sorted(sources)
    assert len(results) == 12
    for name, path in results.items():
        assert path.read_bytes() == sources[name].read_bytes().upper()
    assert LocalBackend(ais_home).endpoints("example-offline") == []


def test_spec_example(ais_home: Path, tmp_path: Path) -> None:
    src, dst, one = tmp_path / "src", tmp_path / "dst", tmp_path / "one.txt"
    dr = example_dag("example_ais_etl_spec").test(
        run_conf={"src": str(src), "dst": str(dst), "local_file": str(one)}
    )
    assert str(dr.state) == "success", task_states(dr)
    assert set(task_states(dr).values()) == {"success"}
    sources, results = visible_objects(src), visible_objects(dst)
    assert sorted(results) == sorted(sources)
    assert len(results) == 5
    for name, path in results.items():
        assert path.read_bytes() == sources[name].read_bytes().upper()
    assert one.read_bytes() == b"HELLO FROM OBJECT 0\n"
    assert LocalBackend(ais_home).endpoints("example-spec") == []


def test_mapped_example(ais_home: Path, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    dr = example_dag("example_ais_etl_mapped").test(run_conf={"src": str(src), "dst": str(dst), "shards": 3})
    states = task_states(dr)
    assert str(dr.state) == "success", states
    assert set(states.values()) == {"success"}
    assert sorted(k for k in states if k[0] == "transform_shard") == [
        ("transform_shard", i) for i in range(3)
    ]
    sources, results = visible_objects(src), visible_objects(dst)
    assert sorted(results) == sorted(sources)
    assert len(results) == 12
    for name, path in results.items():
        lines = sources[name].read_bytes().splitlines(keepends=True)
        assert path.read_bytes() == b"".join(reversed(lines))


def _remove_target_when(dst: Path, home: Path, count: int, done: threading.Event) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not done.is_set():
        if dst.is_dir() and len(visible_objects(dst)) >= count:
            LocalBackend(home).remove_target("t2")
            return
        time.sleep(0.01)


def test_target_leaving_fails_the_transform_and_a_rerun_resumes(
    ais_home: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    conf = {"src": str(src), "dst": str(dst), "num_objects": 60, "delay_ms": 100, "num_workers": 1}
    dag = example_dag("example_ais_etl_offline")
    done = threading.Event()
    remover = threading.Thread(target=_remove_target_when, args=(dst, ais_home, 8, done))
    remover.start()
    try:
        dr = dag.test(run_conf=conf)
    finally:
        done.set()
        remover.join()
    out = capfd.readouterr().out
    states = task_states(dr)
    assert str(dr.state) == "failed"
    assert states[("transform_bucket", -1)] == "failed"
    assert states[("stop_etl", -1)] == "success"  # the teardown ran
    assert states[("init_etl", -1)] == "success"
    assert "target t2 left" in out
    assert "AbortError" in out
    assert LocalBackend(ais_home).endpoints("example-offline") == []
    first = {name: (p.stat().st_ino, p.stat().st_mtime_ns) for name, p in visible_objects(dst).items()}
    assert 8 <= len(first) < 60

    dr = dag.test(run_conf=conf)
    out = capfd.readouterr().out
    assert str(dr.state) == "success", task_states(dr)
    assert set(task_states(dr).values()) == {"success"}
    results = visible_objects(dst)
    assert len(results) == 60
    for name, (ino, mtime) in first.items():
        stat = results[name].stat()
        assert (stat.st_ino, stat.st_mtime_ns) == (ino, mtime), name
    assert f"{60 - len(first)} object(s) transformed, {len(first)} skipped" in out
    assert LocalBackend(ais_home).endpoints("example-offline") == []


def _upper(data: bytes) -> bytes:
    return data.upper()


def test_bucket_transform_heals_a_stopped_etl(ais_home: Path, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i in range(10):
        (src / f"a-{i}.txt").write_text(f"object {i}\n")
    definition = {"kind": "code", "python_callable": _upper}
    hook = AisEtlHook()
    try:
        first = AisEtlBucketTransformOperator(
            task_id="t", etl_name="heal-etl", src=str(src), dst=str(dst), etl_definition=definition
        ).execute({"ti": mock.MagicMock(try_number=1)})  # type: ignore[arg-type]
        assert first["objects"] == 10
        assert first["skipped"] == 0
        assert hook.api.stop("heal-etl") is True
        for i in range(10, 15):
            (src / f"a-{i}.txt").write_text(f"object {i}\n")
        second = AisEtlBucketTransformOperator(
            task_id="t", etl_name="heal-etl", src=str(src), dst=str(dst), etl_definition=definition
        ).execute({"ti": mock.MagicMock(try_number=1)})  # type: ignore[arg-type]
        assert second["objects"] == 5
        assert second["skipped"] == 10
        assert hook.api.info("heal-etl").state == "running"
        assert (dst / "a-12.txt").read_text() == "OBJECT 12\n"
    finally:
        hook.api.stop_all()
    assert os.listdir(src)
