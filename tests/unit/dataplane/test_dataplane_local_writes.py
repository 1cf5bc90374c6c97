"""``LocalBucket.refused_writes``: the file transfer's check of many result names at once.

It must refuse exactly what :meth:`LocalBucket.write_target` refuses, with the same message, for
names that take its inline path (plainly valid, in a directory known to be inside) and for the rest.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from airflow_ais_etl.dataplane.storage.local import LocalBucket

if TYPE_CHECKING:
    from pathlib import Path

NAMES = [
    "plain.bin",
    "d/nested.bin",
    "d/deeper/new.bin",
    "new-dir/x.bin",
    "",
    "/absolute",
    "../up.bin",
    "d/../../up.bin",
    ".hidden",
    "d/.hidden",
    "a//b",
    "trailing/",
    "nul\x00.bin",
    ".ais-etl-tmp-x",
    "d/.ais-etl-tmp-x",
    "out/escape.bin",
    "out",
    "./dot.bin",
]


def _bucket(tmp_path: Path) -> LocalBucket:
    """A fresh ``LocalBucket`` (nothing known yet) of ``tmp_path/b``, made the first time."""
    root = tmp_path / "b"
    if not root.exists():
        (root / "d").mkdir(parents=True)
        (tmp_path / "outside").mkdir()
        os.symlink(tmp_path / "outside", root / "out")
    return LocalBucket(str(root))


def _write_target_errors(bucket: LocalBucket, names: list[str]) -> dict[int, str]:
    errors = {}
    for i, name in enumerate(names):
        try:
            bucket.write_target(name)
        except Exception as exc:
            errors[i] = f"{type(exc).__name__}: {exc}"
    return errors


def test_refused_writes_refuses_what_write_target_refuses_with_its_message(tmp_path: Path) -> None:
    expected = _write_target_errors(_bucket(tmp_path), NAMES)
    valid = {"plain.bin", "d/nested.bin", "d/deeper/new.bin", "new-dir/x.bin", ".hidden", "d/.hidden", "out"}
    assert set(expected) == {i for i, name in enumerate(NAMES) if name not in valid}
    for names in (NAMES, NAMES * 2):  # the second half: directories are known to be inside by then
        got = _bucket(tmp_path).refused_writes(names)
        assert {i: f"{type(e).__name__}: {e}" for i, e in got.items()} == _write_target_errors(
            _bucket(tmp_path), names
        )


def test_a_directory_known_inside_is_refused_once_it_leads_outside(tmp_path: Path) -> None:
    """The inline path trusts only directories it resolved itself: a name under a link is checked fully."""
    bucket = _bucket(tmp_path)
    assert bucket.refused_writes(["d/a.bin", "d/b.bin"]) == {}
    refused = bucket.refused_writes(["out/a.bin", "d/c.bin", "out/b.bin"])
    assert sorted(refused) == [0, 2]
    assert "outside the bucket" in str(refused[0])
