from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_ais_etl.get_provider_info import get_provider_info
from airflow_ais_etl.hooks.ais_etl import AisEtlHook
from airflow_ais_etl.hooks.settings import CONN_FIELDS


def _schema() -> dict:
    path = Path(airflow.__file__).parent / "provider_info.schema.json"
    return json.loads(path.read_text())


def test_provider_info_validates_against_airflow_schema() -> None:
    info = get_provider_info()
    jsonschema.validate(info, _schema())
    assert info["package-name"] == "airflow-ais-etl"


def test_every_listed_module_and_class_imports() -> None:
    info = get_provider_info()
    modules = [
        m
        for kind in ("hooks", "operators", "sensors", "triggers")
        for e in info[kind]
        for m in e["python-modules"]
    ]
    assert len(modules) == 5
    for module in modules:
        importlib.import_module(module)
    classes = [c["hook-class-name"] for c in info["connection-types"]] + info["extra-links"]
    for path in classes:
        module, _, name = path.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), name), type)


def test_connection_type_matches_the_hook() -> None:
    (conn,) = get_provider_info()["connection-types"]
    assert conn["connection-type"] == AisEtlHook.conn_type
    assert conn["hook-name"] == AisEtlHook.hook_name
    assert set(conn["conn-fields"]) == set(CONN_FIELDS)
    behaviour = AisEtlHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == conn["ui-field-behaviour"]["hidden-fields"]
    assert behaviour["placeholders"] == conn["ui-field-behaviour"]["placeholders"]


@pytest.mark.integration
def test_airflow_providers_list_shows_the_provider(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    listed = json.loads(proc.stdout[proc.stdout.index("[") :])
    ours = [p for p in listed if p["package_name"] == "airflow-ais-etl"]
    assert ours
    assert ours[0]["version"] == "0.1.0"
