"""A DAG run (``dag.test()``) with planted secrets: none reaches a log, XCom, Airflow's DB or a shared file.

Planted: the ETL's ``env`` value (templated from a connection's password, as a DAG should take a
credential), the ``ais_etl`` connection's password, and an object-store connection's credentials.
Searched: everything the run printed and logged, every file under AIRFLOW_HOME (its sqlite DB holds
XCom and rendered template fields), every file under the ETL home, and every process's command
line while the ETL runs.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.airflow.conftest import _AIRFLOW_HOME, _airflow_home_cleanup, airflow_db  # noqa: F401
from tests.security.conftest import all_cmdlines

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db")]

ENV_SECRET = f"planted-env-{uuid.uuid4().hex}"
CONN_SECRET = f"planted-conn-{uuid.uuid4().hex}"
STORE_SECRET = f"planted-store-{uuid.uuid4().hex}"
SECRETS = (ENV_SECRET, CONN_SECRET, STORE_SECRET)


DAG_FILE = """
from datetime import datetime

from airflow.sdk import DAG

from airflow_ais_etl.operators.etl import AisEtlInitCodeOperator, AisEtlStopOperator
from airflow_ais_etl.operators.transform import AisEtlBucketTransformOperator

with DAG(dag_id="ais_etl_secret_scan", schedule=None, start_date=datetime(2025, 1, 1)) as dag:
    init = AisEtlInitCodeOperator(
        task_id="init",
        etl_name="scan-dag",
        code="def transform(data):\\n    return data.upper()\\n",
        comm_type="hpull://",
        env={"DB_URL": "postgres://app:{{ conn.scan_db.password }}@db.example/x"},
    )
    transform = AisEtlBucketTransformOperator(task_id="transform", etl_name="scan-dag", src=SRC, dst=DST)
    stop = AisEtlStopOperator(task_id="stop", etl_name="scan-dag")
    init >> transform >> stop
"""


def _dag(folder: Path, src: Path, dst: Path) -> Any:
    """Write the DAG into its own dags folder (``dag.test()`` runs what that folder serializes)."""
    path = folder / "ais_etl_secret_scan.py"
    path.write_text(DAG_FILE.replace("SRC", repr(str(src))).replace("DST", repr(str(dst))))
    spec = importlib.util.spec_from_file_location(f"ais_etl_secret_scan_{uuid.uuid4().hex}", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def test_dag_run_keeps_planted_secrets_private(
    home: Path,
    shared: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SCAN_DB", json.dumps({"conn_type": "postgres", "login": "app", "password": ENV_SECRET})
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_AIS_ETL_DEFAULT",
        json.dumps(
            {"conn_type": "ais_etl", "login": "ops", "password": CONN_SECRET, "extra": {"home": str(home)}}
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps({"conn_type": "aws", "login": "AKIAPLANTED", "password": STORE_SECRET}),
    )
    caplog.set_level(logging.DEBUG)
    src, dst = shared / "src", shared / "dst"
    src.mkdir()
    for i in range(5):
        (src / f"o{i}.txt").write_bytes(f"object {i}\n".encode() * 30)

    dags = shared / "dags"
    dags.mkdir()
    from airflow import settings

    monkeypatch.setattr(settings, "DAGS_FOLDER", str(dags))  # the dags-folder bundle's path
    dag = _dag(dags, src, dst)
    seen: list[str] = []
    stop_watch = threading.Event()

    def watch() -> None:  # what ps shows while the pods run
        while not stop_watch.wait(0.5):
            seen.extend(all_cmdlines().values())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        dr = dag.test()
    finally:
        stop_watch.set()
        watcher.join()
    out, err = capfd.readouterr()
    assert str(dr.state) == "success", out[-3000:] + err[-3000:]
    for p in src.iterdir():
        assert (dst / p.name).read_bytes() == p.read_bytes().upper()

    texts = [out, err, caplog.text, *seen]
    for text in texts:
        for s in SECRETS:
            assert s not in text, f"secret {s} in: {text[max(0, text.find(s) - 500) : text.find(s) + 100]}"
    for root in (_AIRFLOW_HOME, home):
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                if root == home:
                    assert os.stat(path).st_mode & 0o077 == 0, path
                    continue  # the ETL's private state: its env lives in md.json (0600) for `start`
                with open(path, "rb") as f:
                    data = f.read()
                for s in SECRETS:
                    assert s.encode() not in data, f"secret {s} in {path}"
