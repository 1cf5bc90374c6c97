"""Batched small objects end to end: per-object verdicts inside batches, byte-exact mixed sizes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import JobControl, OfflineOptions
from airflow_ais_etl.etl.errors import AbortError
from tests.offline.conftest import (
    count_files,
    mixed_objects,
    objects,
    simple_tree_upper,
    temp_files,
    tree_hashes,
    when,
)
from tests.offline.test_faults import check_nothing_lost, resume

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

FAST_THEN_SLOW = (
    "import time\n\n"
    "def transform(data):\n"
    "    if data.startswith(b'payload 1'):\n"  # over half of the objects: the abort lands mid-run
    "        time.sleep(0.005)\n"
    "    return data.upper()\n"
)
REVERSE_OR_REFUSE = (
    "def transform(data):\n"
    "    if data.startswith(b'bad'):\n"
    "        raise ValueError('refused')\n"
    "    return data[::-1]\n"
)


@pytest.mark.integration
def test_errors_stay_per_object_inside_batches_and_the_rest_is_byte_exact(
    api: AisEtl, tmp_path: Path
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = mixed_objects(src)
    bad = sorted(n for n, p in data.items() if p.startswith(b"bad"))
    api.init_code("batch-etl", REVERSE_OR_REFUSE)
    stats = api.transform_bucket(
        "batch-etl", str(src), str(dst), OfflineOptions(continue_on_error=True, num_workers=8)
    )
    assert sorted(e["object"] for e in stats["errors"]) == bad
    for err in stats["errors"]:
        assert "pod answered 500" in err["error"], err
        assert "ValueError: refused" in err["error"], err
    assert objects(dst) == {n: p[::-1] for n, p in data.items() if n not in bad}
    assert temp_files(dst) == []
    assert stats["objects"] == len(data) - len(bad)
    logs = "".join(p.logs for p in api.logs("batch-etl"))
    assert "(batched)" in logs  # the errors came from inside batches
    api.stop("batch-etl")


def abort_midway_then_resume(api: AisEtl, etl: str, tmp_path: Path) -> None:
    """Abort a job of 2,000 objects once 150 are written: only complete objects, and a resume finishes it."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = simple_tree_upper(src, 2000)
    before = tree_hashes(src)
    control = JobControl()
    when(count_files(dst, 150), lambda: control.abort("task killed"))
    with pytest.raises(AbortError, match="task killed"):
        api.transform_bucket(etl, str(src), str(dst), OfflineOptions(), control=control)
    done = check_nothing_lost(src, dst, data, before)
    assert 150 <= len(done) < len(data)
    resume(api, etl, src, dst, data, done)
    api.stop(etl)


@pytest.mark.integration
def test_an_abort_while_batches_are_in_flight_leaves_only_complete_objects(
    api: AisEtl, tmp_path: Path
) -> None:
    api.init_code("batch-abort-etl", FAST_THEN_SLOW)
    abort_midway_then_resume(api, "batch-abort-etl", tmp_path)
