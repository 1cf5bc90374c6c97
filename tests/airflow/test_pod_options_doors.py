"""An ETL's pod options mean the same from every door: operator (templated), DAG dict, CLI and API."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import jinja2
import pytest

from airflow_ais_etl.cli import build_parser, definition_from_flags
from airflow_ais_etl.etl.definition import CodeSource, EtlDefinition
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.operators.etl import AisEtlInitCodeOperator, AisEtlInitSpecOperator
from airflow_ais_etl.operators.transform import AisEtlBucketTransformOperator
from airflow_ais_etl.service import AisEtl

CODE = "def transform(data):\n    return data[::-1]\n"
OPTIONS: dict[str, Any] = {
    "resources": {"requests": {"cpu": "500m"}, "limits": {"memory": "2Gi"}},
    "pod_labels": {"team": "vision"},
    "image_pull_policy": "Always",
}


def test_pod_options_are_templated_operator_fields() -> None:
    for operator in (AisEtlInitCodeOperator, AisEtlInitSpecOperator):
        assert "pod_options" in operator.template_fields
        assert operator.template_fields_renderers["pod_options"] == "json"
    op = AisEtlInitCodeOperator(
        task_id="init",
        etl_name="rev-etl",
        code=CODE,
        pod_options='{"pod_labels": {"team": "{{ params.team }}"}}',
    )
    rendered = jinja2.Template(op.pod_options).render(params={"team": "vision"})  # what Airflow renders
    op.pod_options = rendered
    assert op.definition().pod_options == {"pod_labels": {"team": "vision"}}
    op.pod_options = '{"pod_labels": {"team": "not valid!"}}'
    with pytest.raises(ValidationError, match="pod_options.pod_labels: label 'team' has an invalid value"):
        op.definition()


def test_pod_options_are_the_same_from_every_door(tmp_path: Any) -> None:
    code_file = tmp_path / "rev.py"
    code_file.write_text(CODE)
    from_operator = AisEtlInitCodeOperator(
        task_id="init", etl_name="rev-etl", code_file=str(code_file), pod_options=json.dumps(OPTIONS)
    ).definition()
    from_dag_dict = AisEtlBucketTransformOperator(
        task_id="t",
        etl_name="rev-etl",
        src="/s",
        dst="/d",
        etl_definition={"kind": "code", "code_file": str(code_file), "pod_options": OPTIONS},
    ).build_definition()
    flags = build_parser().parse_args(
        [
            *("init", "code", "--name", "rev-etl", "--from-file", str(code_file)),
            *("--resources", json.dumps(OPTIONS["resources"]), "--label", "team=vision"),
            *("--image-pull-policy", "Always"),
        ]
    )
    api = AisEtl(backend=mock.MagicMock())
    with mock.patch.object(AisEtl, "init") as init:
        api.init_code("rev-etl", CODE, pod_options=OPTIONS)
    from_api = init.call_args.args[1]
    typed = EtlDefinition(CodeSource(CODE), pod_options=OPTIONS)
    assert from_operator == from_dag_dict == definition_from_flags(flags) == from_api == typed
    assert typed != EtlDefinition(CodeSource(CODE))  # the options count in the definition
