"""``LocalBucket.exists``: the resume's per-object question, answered without building an ``ObjInfo``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.storage.local import LocalBucket
from airflow_ais_etl.etl.errors import StorageError

if TYPE_CHECKING:
    from pathlib import Path


def _bucket(tmp_path: Path) -> LocalBucket:
    root = tmp_path / "b"
    (root / "d").mkdir(parents=True)
    (root / "file.bin").write_bytes(b"x")
    (root / "d" / "nested.bin").write_bytes(b"y")
    (root / "dir-only").mkdir()
    (tmp_path / "outside.bin").write_bytes(b"secret")
    os.symlink(root / "file.bin", root / "link-inside")
    os.symlink(tmp_path / "outside.bin", root / "link-outside")
    os.symlink(root / "d", root / "dirlink")
    return LocalBucket(str(root))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("file.bin", True),
        ("d/nested.bin", True),
        ("missing.bin", False),
        ("d/missing.bin", False),
        ("dir-only", False),
        ("link-inside", True),
    ],
)
def test_exists_agrees_with_stat(tmp_path: Path, name: str, expected: bool) -> None:
    bucket = _bucket(tmp_path)
    assert bucket.exists(name) is expected
    assert bucket.exists(name) is (bucket.stat(name) is not None)
    assert bucket.exists(name) is expected  # the second ask (directories now known inside) agrees


@pytest.mark.parametrize("name", ["link-outside", "dirlink/nested.bin"])
def test_exists_refuses_what_leaves_the_bucket_as_stat_does(tmp_path: Path, name: str) -> None:
    bucket = _bucket(tmp_path)
    outcomes = []
    for ask in (bucket.exists, bucket.stat):
        try:
            outcomes.append(("answer", ask(name) not in (None, False)))
        except StorageError:
            outcomes.append(("refused", None))
    assert outcomes[0] == outcomes[1]
    if name == "link-outside":
        assert outcomes[0] == ("refused", None)
