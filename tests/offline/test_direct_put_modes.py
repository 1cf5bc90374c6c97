"""Results that pods deliver by direct put get the modes the engine would give them.

The targets' gateways run with umask 077 (their own files are private); a job's grant carries the
engine's umask, and the gateway gives each result and each directory it creates the modes that
umask gives, as the engine's own writes and the file transport do. The pods' file transport is
off here, so every result travels over HTTP: batched (small objects) and streamed (large ones).
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from tests.offline.conftest import REVERSE, objects, reverse

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl

pytestmark = pytest.mark.integration

HTTP_ONLY = {"AIS_ETL_FILE_SOCKET": ""}


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_direct_put_results_and_new_directories_get_the_engines_umask(
    api: AisEtl, tmp_path: Path, umask: int
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "a" / "b").mkdir(parents=True)
    (src / "top").write_bytes(b"top")
    (src / "a" / "b" / "deep").write_bytes(b"deep")
    (src / "a" / "big").write_bytes(b"0123456789abcdef" * (1 << 17))  # 2 MiB: streamed alone
    api.init_code("put-modes", REVERSE, comm_type="hpull://", direct_put=True, env=HTTP_ONLY)
    old = os.umask(umask)
    try:
        stats = api.transform_bucket("put-modes", str(src), str(dst), OfflineOptions())
    finally:
        os.umask(old)
    assert stats["state"] == "done", stats["errors"]
    assert (stats["direct_put_objects"], stats["file_objects"]) == (3, 0)
    assert objects(dst) == {n: reverse(p) for n, p in objects(src).items()}
    for name in ("top", "a/b/deep", "a/big"):
        assert stat.S_IMODE((dst / name).stat().st_mode) == 0o666 & ~umask, name
    for name in ("a", "a/b"):
        assert stat.S_IMODE((dst / name).stat().st_mode) == 0o777 & ~umask, name
    api.stop("put-modes")
