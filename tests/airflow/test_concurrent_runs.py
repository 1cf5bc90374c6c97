"""Two DAG runs of the offline example that share its ETL: a teardown leaves it to the other's job.

The first test runs the example's own tasks (rendered with each run's params) as the tasks of two
DAG runs, placing run A's teardown ``stop_etl`` exactly while run B's ``transform_bucket`` runs.
The last one runs the whole DAG twice at once, one ``dag.test()`` per OS process: ``dag.test()``
cannot run twice at once in one process, so each process has its own Airflow home and metadata DB
while both share the ais-etl home (the ETL, its pods and leases). Their inits meet on the same
starting pods, so their jobs start together and run A's teardown falls within run B's longer job.
Real local backend: real pods, real files.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest

from airflow_ais_etl.cluster.local.backend import LocalBackend
from airflow_ais_etl.hooks.ais_etl import AisEtlHook
from airflow_ais_etl.plugins.clusters import etl_overview
from tests.dag_runs import example_dag, visible_objects

if TYPE_CHECKING:
    from pathlib import Path

    from airflow.sdk import BaseOperator

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db")]

DAG_ID = "example_ais_etl_offline"
ETL = "example-offline"
OBJECTS = 100


def _task(task_id: str, params: dict[str, Any], **overrides: Any) -> BaseOperator:
    """Return the example's task ``task_id`` rendered with the run's ``params`` (a private copy)."""
    dag = example_dag(DAG_ID)
    task = copy.deepcopy(dag.get_task(task_id))
    defaults = {name: getattr(param, "value", param) for name, param in dag.params.items()}
    task.render_template_fields({"params": {**defaults, **params}})  # type: ignore[arg-type]
    for name, value in overrides.items():
        setattr(task, name, value)
    return task


def _context(run_id: str, task_id: str) -> dict[str, Any]:
    ti = mock.MagicMock(dag_id=DAG_ID, task_id=task_id, run_id=run_id, try_number=1, map_index=-1)
    return {"ti": ti, "run_id": run_id, "dag": mock.MagicMock(dag_id=DAG_ID)}


def test_a_teardown_leaves_the_etl_to_another_runs_job_and_force_aborts_it_naming_the_task(
    ais_home: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(OBJECTS):
        (src / f"obj-{i:03d}.txt").write_text(f"object {i}\n")
    outcome: dict[str, Any] = {}

    def transform(run_id: str) -> None:
        params = {"src": str(src), "dst": str(tmp_path / run_id), "delay_ms": 20, "num_workers": 1}
        try:
            outcome[run_id] = _task("transform_bucket", params).execute(_context(run_id, "transform_bucket"))
        except BaseException as exc:
            outcome[run_id] = exc

    def teardown(run_id: str, **overrides: Any) -> dict[str, Any]:
        result: dict[str, Any] = _task("stop_etl", {}, **overrides).execute(_context(run_id, "stop_etl"))
        return result

    def while_running(run_id: str) -> threading.Thread:
        job = threading.Thread(target=transform, args=(run_id,))
        job.start()
        while not visible_objects(tmp_path / run_id) and job.is_alive():
            time.sleep(0.01)  # the job runs (and holds its lease) once its first result is visible
        return job

    try:
        job = while_running("run-b")
        api = AisEtlHook().api
        holder = f"offline transform by task transform_bucket of run run-b (dag {DAG_ID})"
        assert etl_overview(api, api.info(ETL), "ais_etl_default")["leases"] == [holder]  # the ETL view
        capfd.readouterr()
        result = teardown("run-a")  # run A's teardown, while run B's job holds the ETL
        assert result == {"stopped": [], "left_running": {ETL: [holder]}}
        assert f"etl {ETL} left running: still in use by {holder}" in capfd.readouterr().out
        job.join(60)
        stats = outcome["run-b"]
        assert isinstance(stats, dict), stats  # run B's job finished, without a retry
        assert (stats["objects"], stats["error_count"]) == (OBJECTS, 0)
        assert len(visible_objects(tmp_path / "run-b")) == OBJECTS
        assert teardown("run-b") == {"stopped": [ETL]}  # the last run's teardown stops it
        assert LocalBackend(ais_home).endpoints(ETL) == []

        job = while_running("run-c")
        assert teardown("run-a", force=True) == {"stopped": [ETL]}
        job.join(60)
        err = outcome["run-c"]
        assert isinstance(err, Exception)
        assert f"etl {ETL} stopped by task stop_etl of run run-a (dag {DAG_ID})" in str(err)
        assert 0 < len(visible_objects(tmp_path / "run-c")) < OBJECTS
    finally:
        AisEtlHook().api.stop_all(force=True)


def test_init_operators_pass_the_definition_change_mode_and_refuse_an_unknown_one() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_ais_etl.operators.etl import AisEtlInitCodeOperator

    op = AisEtlInitCodeOperator(
        task_id="init_etl",
        etl_name="my-etl",
        code="def transform(data):\n    return data\n",
        on_definition_change="replace_if_free",
        definition_change_timeout="30s",
    )
    hook = mock.MagicMock()
    hook.etl_url.return_value = "http://localhost/etl"
    op.__dict__["hook"] = hook
    op.execute(_context("run-a", "init_etl"))  # type: ignore[arg-type]
    kwargs = hook.api.init.call_args.kwargs
    assert (kwargs["on_definition_change"], kwargs["definition_change_timeout"]) == ("replace_if_free", 30.0)
    default = AisEtlInitCodeOperator(task_id="init_etl", etl_name="my-etl", code="x = 1\n")
    assert default.on_definition_change == "wait_then_replace"
    op.on_definition_change = "sometimes"
    with pytest.raises(AirflowFailException, match="on_definition_change must be one of"):
        op.execute(_context("run-a", "init_etl"))  # type: ignore[arg-type]


# One real DAG run per OS process: its own AIRFLOW_HOME and sqlite DB (Airflow's metadata is the
# run's), the same AIS_ETL_HOME (the ETL and its leases are the cluster's, shared by both runs).
_RUN_DAG = """
import json, sys
from tests.dag_runs import example_dag
dr = example_dag("example_ais_etl_offline").test(run_conf=json.loads(sys.argv[1]))
tis = {ti.task_id: [ti.start_date.timestamp(), ti.end_date.timestamp(), str(ti.state)]
       for ti in dr.get_task_instances() if ti.start_date and ti.end_date}
print("RESULT " + json.dumps({"state": str(dr.state), "run_id": dr.run_id, "tasks": tis}), flush=True)
"""


def _own_airflow_home(root: Path, template_db: Path) -> dict[str, str]:
    """Return the environment of a process with its own Airflow home and a copy of the migrated DB."""
    import sqlite3

    root.mkdir()
    with sqlite3.connect(template_db) as src, sqlite3.connect(root / "airflow.db") as dst:
        src.backup(dst)
    return {
        "AIRFLOW_HOME": str(root),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{root / 'airflow.db'}",
    }


def test_two_concurrent_dag_runs_in_two_processes_share_the_etl_and_both_succeed(
    ais_home: Path, tmp_path: Path, airflow_db: Path
) -> None:
    import json
    import os
    import subprocess
    import sys

    from tests.dag_runs import EXAMPLE_DAGS

    # The same definition (delay_ms is part of it), so the runs share one ETL; run B's bucket is
    # bigger, so run A's teardown comes while run B's job still transforms: B's job lasts about
    # 15 s (300 objects, 100 ms each, one at a time on each of 2 targets), which is how far apart
    # the two processes may reach their transforms (they start together; the second init waits
    # for the first one's pods). A's job lasts about 5 s, so that a loaded machine, where B's
    # tasks start seconds after A's, still has B's job running before A's teardown.
    runs = {"a": 100, "b": 300}
    procs = {}
    for run, objects in runs.items():
        conf = {
            "src": str(tmp_path / f"src-{run}"),
            "dst": str(tmp_path / f"dst-{run}"),
            "num_objects": objects,
            "num_workers": 1,
            "delay_ms": 100,
        }
        env = {**os.environ, **_own_airflow_home(tmp_path / f"airflow-{run}", airflow_db / "airflow.db")}
        env.pop("AIRFLOW_CONN_AIS_ETL_DEFAULT", None)
        log = (tmp_path / f"run-{run}.log").open("w")
        procs[run] = subprocess.Popen(
            [sys.executable, "-c", _RUN_DAG, json.dumps(conf)],
            cwd=str(EXAMPLE_DAGS.parent),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        for proc in procs.values():
            proc.wait(timeout=300)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        AisEtlHook().api.stop_all(force=True)
    logs = {run: (tmp_path / f"run-{run}.log").read_text() for run in runs}
    results = {}
    for run, text in logs.items():
        lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
        assert procs[run].returncode == 0, f"run {run} failed:\n{text[-4000:]}"
        assert lines, f"run {run} printed no result:\n{text[-4000:]}"
        results[run] = json.loads(lines[-1].removeprefix("RESULT "))
    for run, objects in runs.items():
        assert results[run]["state"] == "success", (results[run], logs[run][-4000:])
        assert {state for _s, _e, state in results[run]["tasks"].values()} == {"success"}, results[run]
        sources, written = visible_objects(tmp_path / f"src-{run}"), visible_objects(tmp_path / f"dst-{run}")
        assert sorted(written) == sorted(sources)
        assert len(written) == objects
        assert all(written[name].read_bytes() == sources[name].read_bytes().upper() for name in written)
    a, b = results["a"]["tasks"], results["b"]["tasks"]
    # They overlapped: run A's teardown came while run B's job ran ...
    assert b["transform_bucket"][0] < a["stop_etl"][0] < b["transform_bucket"][1], (a, b)
    # ... which held the ETL: run A's teardown left it running, and run B's stopped it.
    holder = f"offline transform by task transform_bucket of run {results['b']['run_id']} (dag {DAG_ID})"
    assert f"etl {ETL} left running: still in use by {holder}" in logs["a"], logs["a"][-4000:]
    assert f"etl {ETL} stopped" in logs["b"]
    assert LocalBackend(ais_home).endpoints(ETL) == []
