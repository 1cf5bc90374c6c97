"""Run every example DAG with ``dag.test()`` on the real local backend (real processes, real files)."""

from __future__ import annotations

import os
import re
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


def test_a_run_with_changed_params_succeeds_after_a_run_with_the_defaults(
    ais_home: Path, tmp_path: Path
) -> None:
    """The first run's teardown stopped the ETL, so the second run's different definition replaces it."""
    dag = example_dag("example_ais_etl_offline")
    src, dst = tmp_path / "src", tmp_path / "dst"
    first = dag.test(run_conf={"src": str(src), "dst": str(dst), "num_objects": 6})
    assert str(first.state) == "success", task_states(first)
    changed = {
        "src": str(src),
        "dst": str(tmp_path / "dst2"),
        "num_objects": 6,
        "delay_ms": 1,
        "comm_type": "hpull://",
    }
    second = dag.test(run_conf=changed)
    assert str(second.state) == "success", task_states(second)
    view = LocalBackend(ais_home).read_md().get("example-offline")
    assert view is not None
    assert view.comm_type == "hpull://"
    assert len(visible_objects(tmp_path / "dst2")) == 6


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
    # map_index_template: each task is named by its hash shard in the grid
    names = {
        ti.map_index: ti.rendered_map_index
        for ti in dr.get_task_instances()
        if ti.task_id == "transform_shard"
    }
    assert names == {0: "shard 0/3", 1: "shard 1/3", 2: "shard 2/3"}
    sources, results = visible_objects(src), visible_objects(dst)
    assert sorted(results) == sorted(sources)
    assert len(results) == 12
    for name, path in results.items():
        lines = sources[name].read_bytes().splitlines(keepends=True)
        assert path.read_bytes() == b"".join(reversed(lines))


def _remove_target_when(
    dst: Path, home: Path, count: int, done: threading.Event, seen: dict[str, tuple[int, int]]
) -> None:
    """Remove target t2 once ``count`` results exist; note the results written before (inode, mtime)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not done.is_set():
        if dst.is_dir() and len(visible_objects(dst)) >= count:
            LocalBackend(home).remove_target("t2")
            seen.update({n: (p.stat().st_ino, p.stat().st_mtime_ns) for n, p in visible_objects(dst).items()})
            return
        time.sleep(0.01)


def test_a_target_leaving_aborts_the_transform_and_its_retry_resumes(
    ais_home: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The example's transform has retries=2: the abort fails the first try, the retry restarts the ETL
    on the remaining target and resumes (what was written before is skipped, never rewritten)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    conf = {"src": str(src), "dst": str(dst), "num_objects": 60, "delay_ms": 100, "num_workers": 1}
    dag = example_dag("example_ais_etl_offline")
    done = threading.Event()
    first: dict[str, tuple[int, int]] = {}
    remover = threading.Thread(target=_remove_target_when, args=(dst, ais_home, 8, done, first))
    remover.start()
    try:
        dr = dag.test(run_conf=conf)
    finally:
        done.set()
        remover.join()
    out = capfd.readouterr().out
    states = task_states(dr)
    assert str(dr.state) == "success", states
    assert set(states.values()) == {"success"}
    tis = {ti.task_id: ti for ti in dr.get_task_instances()}
    assert tis["transform_bucket"].try_number == 2
    # the abort ends the first try with one readable paragraph, not the engine's traceback
    assert out.count("The offline job of ETL example-offline was aborted: target t2 left.") == 1
    assert "This was try 1 of 3: the retry restarts the ETL" in out
    tail = out.split("Last lines of the log of target t2's pod:", 1)  # the stopped pod's log, quoted
    assert len(tail) == 2, out[-2000:]
    assert "runtime ready" in tail[1]
    assert "airflow_ais_etl/dataplane/" not in out
    assert "During handling of the above exception" not in out
    assert 8 <= len(first) < 60
    results = visible_objects(dst)
    assert len(results) == 60
    for name, (ino, mtime) in first.items():
        stat = results[name].stat()
        assert (stat.st_ino, stat.st_mtime_ns) == (ino, mtime), name
    done_line = next(
        line for line in out.splitlines() if "skipped, 0 error(s)" in line and "transformed" in line
    )
    transformed, skipped = (
        int(x) for x in re.findall(r"(\d+) object\(s\) transformed, (\d+) skipped", done_line)[0]
    )
    assert transformed + skipped == 60
    assert skipped >= len(first)
    assert LocalBackend(ais_home).endpoints("example-offline") == []


def test_every_example_teaches_doc_md_deferral_and_retries() -> None:
    for name in ("example_ais_etl_offline", "example_ais_etl_mapped", "example_ais_etl_spec"):
        dag = example_dag(name)
        assert dag.doc_md
        assert dag.doc_md.strip().startswith("###"), name
        assert dag.get_task("wait_healthy").deferrable is True, name
    offline = example_dag("example_ais_etl_offline").get_task("transform_bucket")
    assert offline.retries == 2
    assert offline.retry_delay.total_seconds() > 0


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
