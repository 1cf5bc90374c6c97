"""The transform operators run pipelines (``etl-1>>etl-2`` or a list) on the real local backend."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_ais_etl.hooks.ais_etl import AisEtlHook
from airflow_ais_etl.operators.transform import AisEtlBucketTransformOperator, AisEtlObjectTransformOperator

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db")]


def _upper(data: bytes) -> bytes:
    return data.upper()


def _reverse(data: bytes) -> bytes:
    return data[::-1]


DEFINITIONS = {
    "up-etl": {"kind": "code", "python_callable": _upper},
    "rev-etl": {"kind": "code", "python_callable": _reverse, "comm_type": "hpull://"},
}


def test_pipeline_operators_heal_each_etl_and_resume(ais_home: Path, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    for i in range(8):
        (src / f"a-{i}.txt").write_text(f"object {i}\n")
    hook = AisEtlHook()
    ctx = {"ti": mock.MagicMock(try_number=1)}

    def bucket_task() -> AisEtlBucketTransformOperator:
        return AisEtlBucketTransformOperator(
            task_id="t", etl_name="up-etl>>rev-etl", src=str(src), dst=str(dst), etl_definition=DEFINITIONS
        )

    try:
        first = bucket_task().execute(ctx)  # type: ignore[arg-type]
        assert (first["etl"], first["objects"]) == ("up-etl>>rev-etl", 8)
        assert (dst / "a-3.txt").read_bytes() == b"\n3 TCEJBO"
        assert hook.api.stop("rev-etl") is True  # the second stage went away: the next run heals it
        for i in range(8, 11):
            (src / f"a-{i}.txt").write_text(f"object {i}\n")
        second = bucket_task().execute(ctx)  # type: ignore[arg-type]
        assert (second["objects"], second["skipped"]) == (3, 8)
        assert hook.api.info("rev-etl").state == "running"
        assert (dst / "a-9.txt").read_bytes() == b"\n9 TCEJBO"

        out = tmp_path / "one.txt"
        summary = AisEtlObjectTransformOperator(
            task_id="o", etl_name=["rev-etl", "up-etl"], src=str(src), obj="a-1.txt", local_file=str(out)
        ).execute(ctx)  # type: ignore[arg-type]
        assert summary["bytes_out"] == len(b"\n1 TCEJBO")
        assert out.read_bytes() == b"\n1 TCEJBO"

        with pytest.raises(AirflowFailException, match="appears twice"):
            AisEtlObjectTransformOperator(
                task_id="o", etl_name="up-etl>>up-etl", src=str(src), obj="a-1.txt", local_file=str(out)
            ).execute(ctx)  # type: ignore[arg-type]
        with pytest.raises(AirflowFailException, match="maps ETL names of the pipeline"):
            AisEtlBucketTransformOperator(
                task_id="t",
                etl_name="up-etl>>rev-etl",
                src=str(src),
                dst=str(dst),
                etl_definition=DEFINITIONS["up-etl"],
            ).execute(ctx)  # type: ignore[arg-type]
    finally:
        hook.api.stop_all()
    assert os.listdir(src)
