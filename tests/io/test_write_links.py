"""A whole-object write over a symbolic link replaces the link; it never writes where the link points."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from airflow_ais_etl.dataplane.storage.opener import open_bucket

if TYPE_CHECKING:
    from pathlib import Path


def test_write_bytes_replaces_a_link_and_leaves_its_target_alone(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    root = tmp_path / "bkt"
    (root / "sub").mkdir(parents=True)
    os.symlink(outside / "secret", root / "linkfile")
    os.symlink(outside / "secret", root / "sub" / "linkfile")
    bucket = open_bucket(str(root), create=True, fsync=False)
    bucket.write_bytes("sub/first", b"1")  # the directory is now known to be inside
    for name in ("linkfile", "sub/linkfile"):
        bucket.write_bytes(name, b"new " + name.encode())
        assert not (root / name).is_symlink()
        assert bucket.read_bytes(name) == b"new " + name.encode()
    assert (outside / "secret").read_bytes() == b"secret"
    assert sorted(os.listdir(outside)) == ["secret"]
