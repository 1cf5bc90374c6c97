"""The Airflow origin of an ETL's objects: labels (sanitised, distinct) and annotations (verbatim)."""

from __future__ import annotations

import re

import pytest

from airflow_ais_etl.etl.origin import Origin, origin_key
from airflow_ais_etl.etl.podspec import Target, prepare_pod
from tests.unit.etl.test_etl_prepare import SPEC, URL, spec_msg

LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
CONTEXT = {
    "dag_id": "etl_pipeline",
    "task_id": "group.init-etl",
    "run_id": "manual__2025-01-02T03:04:05.678901+00:00",
    "try_number": 2,
    "map_index": 3,
    "unrelated": "ignored",
}


def test_keys_are_prefixed_and_annotations_are_verbatim() -> None:
    origin = Origin.from_mapping(CONTEXT)
    assert origin.annotations() == {
        "airflow-ais-etl/dag-id": "etl_pipeline",
        "airflow-ais-etl/task-id": "group.init-etl",
        "airflow-ais-etl/run-id": "manual__2025-01-02T03:04:05.678901+00:00",
        "airflow-ais-etl/try-number": "2",
        "airflow-ais-etl/map-index": "3",
    }
    labels = origin.labels()
    assert labels.keys() == origin.annotations().keys()
    assert labels["airflow-ais-etl/dag-id"] == "etl_pipeline"  # valid values stay as they are
    assert labels["airflow-ais-etl/try-number"] == "2"
    assert labels["airflow-ais-etl/map-index"] == "3"
    run = labels["airflow-ais-etl/run-id"]
    assert run != CONTEXT["run_id"]
    assert run.startswith("manual__2025-01-02T03-04-05.678901-00-00-")


@pytest.mark.parametrize(
    "value",
    [
        "x" * 63,
        "x" * 64,
        "d" * 300,
        "my dag/with:odd chars",
        "-leading",
        "trailing.",
        "ünïcödé",
        "_",
        "...",
        "",
    ],
)
def test_label_values_are_valid(value: str) -> None:
    label = Origin(dag_id=value).labels()[origin_key("dag_id")]
    assert len(label) <= 63
    assert re.fullmatch(LABEL_VALUE, label), label
    assert Origin(dag_id=value).annotations()[origin_key("dag_id")] == value
    if len(value) <= 63 and re.fullmatch(LABEL_VALUE, value):
        assert label == value


def test_distinct_values_stay_distinct() -> None:
    values = ["a" * 70 + "1", "a" * 70 + "2", "a b", "a/b", "a:b", "a-b", "x" * 64, "x" * 65]
    labels = {Origin(run_id=v).labels()[origin_key("run_id")] for v in values}
    assert len(labels) == len(values)


def test_unmapped_task_has_no_map_index_label_but_the_annotation() -> None:
    origin = Origin.from_mapping({**CONTEXT, "map_index": -1})
    assert origin_key("map_index") not in origin.labels()
    assert origin.annotations()[origin_key("map_index")] == "-1"


def test_missing_fields_are_left_out() -> None:
    assert Origin.from_mapping({}).labels() == {}
    assert Origin.from_mapping({"task_id": "t"}).annotations() == {origin_key("task_id"): "t"}


def test_prepare_pod_puts_the_origin_on_pod_and_service() -> None:
    from airflow_ais_etl.etl.podcheck import parse_pod_spec

    origin = Origin.from_mapping(CONTEXT)
    pod = parse_pod_spec(SPEC)
    pod["metadata"]["annotations"] = {"note": "kept"}
    prep = prepare_pod(
        pod,
        spec_msg(),
        Target("t1", "node-1"),
        target_url=URL,
        labels=origin.labels(),
        annotations=origin.annotations(),
    )
    for obj in (prep.pod, prep.service):
        assert origin.labels().items() <= obj["metadata"]["labels"].items()
        assert origin.annotations().items() <= obj["metadata"]["annotations"].items()
    assert prep.pod["metadata"]["annotations"]["note"] == "kept"
    assert prep.pod["metadata"]["labels"]["nvidia.com/ais-etl-name"] == prep.pod_name


def test_origin_is_not_part_of_the_definition() -> None:
    import dataclasses

    from airflow_ais_etl.etl.definition import EtlDefinition

    assert "origin" not in {f.name for f in dataclasses.fields(EtlDefinition)}
