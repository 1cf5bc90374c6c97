"""An AIStore runtime spec (``etl_spec.yaml``) is one definition from the operator, the CLI and the API."""

from __future__ import annotations

from typing import TYPE_CHECKING
from unittest import mock

from airflow_ais_etl.cli import build_parser, definition_from_flags
from airflow_ais_etl.etl.constants import HPULL
from airflow_ais_etl.etl.definition import EtlDefinition
from airflow_ais_etl.operators.etl import AisEtlInitSpecOperator
from airflow_ais_etl.service import AisEtl

if TYPE_CHECKING:
    from pathlib import Path

RUNTIME_SPEC = """\
name: echo-etl
runtime:
  image: aistorage/transformer_echo:latest
  command: ["python", "/app/server.py"]
communication: hpull://
init_timeout: 2m
"""


def test_runtime_spec_is_the_same_definition_from_every_door(tmp_path: Path) -> None:
    path = tmp_path / "etl_spec.yaml"
    path.write_text(RUNTIME_SPEC)
    from_operator = AisEtlInitSpecOperator(task_id="init", etl_name="echo-etl", spec=str(path)).definition()
    from_cli = definition_from_flags(build_parser().parse_args(["init", "spec", "--from-file", str(path)]))
    api = AisEtl(mock.MagicMock())
    with mock.patch.object(AisEtl, "init") as init:
        api.init_spec("echo-etl", RUNTIME_SPEC)
    from_api = init.call_args.args[1]
    assert from_operator == from_cli == from_api == EtlDefinition.from_mapping({"spec": RUNTIME_SPEC})
    assert (from_operator.comm_type, from_operator.timeout) == (HPULL, 120.0)
    overridden = AisEtlInitSpecOperator(
        task_id="init", etl_name="echo-etl", spec=RUNTIME_SPEC, comm_type="hpush", timeout="30s"
    ).definition()
    assert (overridden.comm_type, overridden.timeout) == ("hpush://", 30.0)
