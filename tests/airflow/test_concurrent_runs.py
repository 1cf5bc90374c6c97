"""Two DAG runs of the offline example that share its ETL: a teardown leaves it to the other's job.

The example's own tasks (rendered with each run's params) run here as the tasks of two DAG runs:
run B's ``transform_bucket`` runs while run A's teardown ``stop_etl`` comes, as when two runs
overlap (``dag.test()`` cannot run twice at once in one process, and two processes only overlap
their jobs by chance). Real local backend: real pods, real files.
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
