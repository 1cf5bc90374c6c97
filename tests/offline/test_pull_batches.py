"""Pull batches end to end: hpull objects many per request, fetched and delivered by the pods.

The pods run with the file transport off (``AIS_ETL_FILE_SOCKET`` empty): on the local backend it
would carry these objects as descriptors instead, and pull batches are the HTTP path (Kubernetes,
object stores, AIS's servers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from tests.offline.conftest import mixed_objects, objects, simple_tree_upper, temp_files
from tests.offline.test_batches import FAST_THEN_SLOW, REVERSE_OR_REFUSE, abort_midway_then_resume

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl


HTTP_ONLY = {"AIS_ETL_FILE_SOCKET": ""}
"""Pod env that turns the file transport off, so that objects travel over HTTP."""


@pytest.mark.integration
@pytest.mark.parametrize("direct_put", [True, False], ids=["direct-put", "answered"])
def test_pull_batches_keep_errors_per_object_and_the_rest_byte_exact(
    api: AisEtl, tmp_path: Path, direct_put: bool
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = mixed_objects(src, prefix="d/")
    bad = sorted(n for n, p in data.items() if p.startswith(b"bad"))
    etl = f"pull-batch-{int(direct_put)}"
    api.init_code(etl, REVERSE_OR_REFUSE, comm_type="hpull://", direct_put=direct_put, env=HTTP_ONLY)
    stats = api.transform_bucket(
        etl, str(src), str(dst), OfflineOptions(continue_on_error=True, num_workers=8)
    )
    assert sorted(e["object"] for e in stats["errors"]) == bad
    for err in stats["errors"]:
        assert "pod answered 500" in err["error"], err
        assert "ValueError: refused" in err["error"], err
    assert objects(dst) == {n: p[::-1] for n, p in data.items() if n not in bad}
    assert temp_files(dst) == []
    assert stats["objects"] == len(data) - len(bad)
    assert stats["file_objects"] == 0
    if direct_put:
        assert stats["direct_put_objects"] == len(data) - len(bad)
        assert stats["bytes_via_engine"] == 0
    else:
        assert stats["bytes_via_engine"] == stats["bytes_out"]
    logs = "".join(p.logs for p in api.logs(etl))
    assert "(batched)" in logs  # the errors came from inside pull batches
    api.stop(etl)


@pytest.mark.integration
def test_an_abort_while_pull_batches_are_in_flight_leaves_only_complete_objects(
    api: AisEtl, tmp_path: Path
) -> None:
    api.init_code("pull-batch-abort", FAST_THEN_SLOW, comm_type="hpull://", direct_put=True, env=HTTP_ONLY)
    abort_midway_then_resume(api, "pull-batch-abort", tmp_path)


SLOW_FOR_SOME = (
    "import time\n\n"
    "def transform(data):\n"
    "    if data.startswith(b'payload 1'):\n"  # past a batch's 2 ms budget: the rest go on their own
    "        time.sleep(0.003)\n"
    "    if data.startswith(b'payload 17 '):\n"
    "        raise ValueError('refused')\n"
    "    return data.upper()\n"
)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("comm_type", "direct_put"), [("hpush://", False), ("hpull://", True)], ids=["push", "pull-direct"]
)
def test_objects_a_batch_left_undone_go_on_their_own_and_every_object_ends_right(
    api: AisEtl, tmp_path: Path, comm_type: str, direct_put: bool
) -> None:
    """Takes of many objects over HTTP: each ends written byte-exact or with its own error, whichever
    way it went (in a batch, left undone by its batch and sent alone, or refused inside a batch)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = simple_tree_upper(src, 300)
    etl = f"undone-{int(direct_put)}"
    api.init_code(etl, SLOW_FOR_SOME, comm_type=comm_type, direct_put=direct_put, env=HTTP_ONLY)
    stats = api.transform_bucket(etl, str(src), str(dst), OfflineOptions(continue_on_error=True))
    assert [e["object"] for e in stats["errors"]] == ["o-0017.dat"]
    assert objects(dst) == {n: p.upper() for n, p in data.items() if n != "o-0017.dat"}
    assert temp_files(dst) == []
    assert stats["objects"] == len(data) - 1
    assert stats["file_objects"] == 0
    assert stats["direct_put_objects"] == (len(data) - 1 if direct_put else 0)
    api.stop(etl)
