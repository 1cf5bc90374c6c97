"""Operators, the CLI and the service API build the same ETL definition, hence the same init message."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING
from unittest import mock

from airflow_ais_etl.cli import build_parser, definition_from_flags
from airflow_ais_etl.etl.definition import CODE_KEYS, SPEC_KEYS, CodeSource, EtlDefinition, SpecSource
from airflow_ais_etl.etl.msg import to_wire
from airflow_ais_etl.etl.validation import validate
from airflow_ais_etl.operators.etl import AisEtlInitCodeOperator, AisEtlInitSpecOperator
from airflow_ais_etl.operators.transform import AisEtlBucketTransformOperator
from airflow_ais_etl.service import AisEtl

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.etl.msg import InitMsg

CODE = "def transform(data):\n    return data[::-1]\n"
SPEC = """apiVersion: v1
kind: Pod
metadata: {name: rev}
spec:
  containers:
    - name: server
      image: example.com/rev:1
      command: ["python", "/app/rev.py"]
      ports: [{name: default, containerPort: 8000}]
      readinessProbe: {httpGet: {path: /health, port: default}}
"""


def _through_api(method: str, *args: object, **options: object) -> EtlDefinition:
    """Return the definition that ``AisEtl.<method>`` hands to ``init``."""
    api = AisEtl(backend=mock.MagicMock())
    with mock.patch.object(AisEtl, "init") as init:
        getattr(api, method)("rev-etl", *args, **options)
    name, definition = init.call_args.args
    assert name == "rev-etl"
    return definition


def _wire(msg: InitMsg) -> dict:
    return to_wire(validate(msg))


def test_code_definition_is_the_same_from_every_door(tmp_path: Path) -> None:
    code_file, deps_file = tmp_path / "rev.py", tmp_path / "requirements.txt"
    code_file.write_text(CODE)
    deps_file.write_text("zstandard\nnumpy==2.0\n")
    operator_args = {
        "code_file": str(code_file),
        "dependencies": ["zstandard", "numpy==2.0"],
        "runtime": "python3.12v2",
        "comm_type": "hpull",
        "arg_type": "url",
        "chunk_size": "65536",
        "timeout": "2m",
        "env": {"GREETING": "hi"},
        "replace": True,
    }
    from_operator = AisEtlInitCodeOperator(task_id="init", etl_name="rev-etl", **operator_args).definition()  # type: ignore[arg-type]
    from_dag_dict = AisEtlBucketTransformOperator(
        task_id="t", etl_name="rev-etl", src="/s", dst="/d", etl_definition={"kind": "code", **operator_args}
    ).build_definition()
    flags = build_parser().parse_args(
        [
            *("init", "code", "--name", "rev-etl", "--from-file", str(code_file)),
            *("--deps-file", str(deps_file), "--runtime", "python3.12v2", "--comm-type", "hpull"),
            *("--arg-type", "url", "--chunk-size", "65536", "--wait-timeout", "2m"),
            *("--env", "GREETING=hi", "--replace"),
        ]
    )
    from_cli = definition_from_flags(flags)
    from_api = _through_api(
        "init_code",
        CODE,
        dependencies="zstandard\nnumpy==2.0\n",
        runtime="python3.12v2",
        comm_type="hpull://",
        arg_type="url",
        chunk_size=65536,
        timeout=120,
        env={"GREETING": "hi"},
        replace=True,
    )
    typed = EtlDefinition(
        CodeSource(CODE, dependencies="zstandard\nnumpy==2.0\n", runtime="python3.12v2", chunk_size=65536),
        comm_type="hpull://",
        arg_type="url",
        timeout=120.0,
        env={"GREETING": "hi"},
        replace=True,
    )
    assert from_operator == from_dag_dict == from_cli == from_api == typed
    wires = [_wire(d.to_msg("rev-etl")) for d in (from_operator, from_dag_dict, from_cli, from_api, typed)]
    assert all(wire == wires[0] for wire in wires)
    assert wires[0]["communication"] == "hpull://"
    assert wires[0]["timeout"] == "2m"


def test_spec_definition_is_the_same_from_every_door(tmp_path: Path) -> None:
    spec_file = tmp_path / "rev.yaml"
    spec_file.write_text(SPEC)
    from_operator = AisEtlInitSpecOperator(
        task_id="init", etl_name="rev-etl", spec=str(spec_file), comm_type="io://", timeout=30
    ).definition()
    flags = build_parser().parse_args(
        [
            "init",
            "spec",
            "--name",
            "rev-etl",
            "--from-file",
            str(spec_file),
            "--comm-type",
            "io",
            "--wait-timeout",
            "30s",
        ]
    )
    from_cli = definition_from_flags(flags)
    from_api = _through_api("init_spec", SPEC, comm_type="io", timeout="30s")
    typed = EtlDefinition(SpecSource(SPEC), comm_type="io://", timeout=30.0)
    assert from_operator == from_cli == from_api == typed
    assert _wire(from_operator.to_msg("rev-etl")) == _wire(typed.to_msg("rev-etl"))


def test_defaults_are_the_same_from_every_door(tmp_path: Path) -> None:
    code_file = tmp_path / "rev.py"
    code_file.write_text(CODE)
    from_operator = AisEtlInitCodeOperator(task_id="init", etl_name="rev-etl", code=CODE).definition()
    from_cli = definition_from_flags(
        build_parser().parse_args(["init", "code", "--name", "rev-etl", "--from-file", str(code_file)])
    )
    from_api = _through_api("init_code", CODE)
    assert from_operator == from_cli == from_api == EtlDefinition(CodeSource(CODE))


def test_init_operators_take_exactly_the_definition_arguments() -> None:
    """An argument added to the definition must reach the operators (and nothing else may creep in)."""
    for operator, keys in ((AisEtlInitCodeOperator, CODE_KEYS), (AisEtlInitSpecOperator, SPEC_KEYS)):
        params = inspect.signature(operator.__init__).parameters
        # what an init does when another definition runs, and where it waits for the pods (worker or
        # triggerer), are the init's choices, not the definition's
        init_only = {"etl_name", "on_definition_change", "definition_change_timeout", "deferrable"}
        own = {name for name, p in params.items() if p.kind is p.KEYWORD_ONLY} - init_only
        assert own == set(keys), operator.__name__
