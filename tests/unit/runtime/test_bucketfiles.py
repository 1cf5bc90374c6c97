"""A bucket's files as engine and pods write them: atomic, with a named temp file where ``O_TMPFILE`` is missing."""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.runtime import bucketfiles
from airflow_ais_etl.runtime.bucketfiles import StoreError, create_temp
from airflow_ais_etl.runtime.tempnames import TEMP_PREFIX

if TYPE_CHECKING:
    from pathlib import Path


def _temps(root: Path) -> list[str]:
    return [f for _d, _s, files in os.walk(root) for f in files if f.startswith(TEMP_PREFIX)]


def _kernel_refusing_links_by_descriptor(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make ``linkat(AT_EMPTY_PATH)`` fail as kernels before 6.10 do; return the flags of every call."""
    real, calls = bucketfiles._linkat(), []

    def linkat(old_dir: int, old: bytes, new_dir: int, new: bytes, flags: int) -> int:
        calls.append(flags)
        if flags & bucketfiles._AT_EMPTY_PATH:
            ctypes.set_errno(errno.ENOENT)
            return -1
        return int(real(old_dir, old, new_dir, new, flags))

    monkeypatch.setattr(bucketfiles, "_linkat", lambda: linkat)
    return calls


@pytest.fixture(autouse=True)
def _links_by_descriptor_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new process does: no refusal of the descriptor link seen yet."""
    monkeypatch.setattr(bucketfiles, "_by_descriptor", True)


@pytest.fixture(params=["unnamed", "unnamed-old-kernel", "named"])
def kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every temp-file kind: ``named`` is what a file system without ``O_TMPFILE`` gets; an
    unnamed file is named through its descriptor, or through ``/proc`` where the kernel refuses that."""
    if request.param == "named":
        monkeypatch.setattr(bucketfiles, "open_unnamed", lambda directory: -1)
    if request.param == "unnamed-old-kernel":
        _kernel_refusing_links_by_descriptor(monkeypatch)
    return str(request.param)


def test_a_result_appears_only_when_committed_and_replaces_an_old_one(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "sub" / "dir" / "obj"
    temp = create_temp("file://b", "sub/dir/obj", str(target), anonymous=True, fsync=False)
    assert (temp.tmp is None) == kind.startswith("unnamed")
    os.write(temp.fd, b"new")
    assert not target.exists()
    assert len(_temps(tmp_path)) == (1 if kind == "named" else 0)
    temp.commit()
    assert target.read_bytes() == b"new"
    again = create_temp("file://b", "sub/dir/obj", str(target), anonymous=True, fsync=True)
    os.write(again.fd, b"newer")
    assert target.read_bytes() == b"new"  # the old object stays whole until the commit
    again.commit()
    assert target.read_bytes() == b"newer"
    assert _temps(tmp_path) == []


def test_a_kernel_that_refuses_links_by_descriptor_is_asked_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _kernel_refusing_links_by_descriptor(monkeypatch)
    for name in ("a", "b"):
        temp = create_temp("file://b", name, str(tmp_path / name), anonymous=True, fsync=False)
        os.write(temp.fd, name.encode())
        temp.commit()
    assert [(tmp_path / n).read_bytes() for n in ("a", "b")] == [b"a", b"b"]
    empty_path = bucketfiles._AT_EMPTY_PATH
    assert [bool(f & empty_path) for f in calls] == [True, False, False]  # then /proc only
    assert bucketfiles._by_descriptor is False


def test_a_directory_gone_before_the_commit_is_a_store_error_not_a_refusal(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    temp = create_temp("file://b", "sub/obj", str(tmp_path / "sub" / "obj"), anonymous=True, fsync=False)
    assert temp.tmp is None
    (tmp_path / "sub").rmdir()  # an unnamed file leaves its directory empty
    with pytest.raises(StoreError, match="cannot store 'sub/obj'"):
        temp.commit()
    assert bucketfiles._by_descriptor is True  # the kernel did not refuse: keep linking by descriptor
    assert list(tmp_path.iterdir()) == []


def test_a_discarded_result_leaves_nothing(tmp_path: Path, kind: str) -> None:
    temp = create_temp("file://b", "obj", str(tmp_path / "obj"), anonymous=True, fsync=False)
    os.write(temp.fd, b"half")
    temp.discard()
    temp.discard()  # again: nothing
    assert list(tmp_path.iterdir()) == []


def test_a_directory_in_the_way_is_a_store_error_and_leaves_no_temp_file(tmp_path: Path, kind: str) -> None:
    (tmp_path / "obj").mkdir()
    temp = create_temp("file://b", "obj", str(tmp_path / "obj"), anonymous=True, fsync=False)
    with pytest.raises(StoreError, match="cannot write 'obj': a directory has that name"):
        temp.commit()
    assert _temps(tmp_path) == []


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_an_umask_gives_the_file_and_new_directories_their_modes(
    tmp_path: Path, kind: str, umask: int
) -> None:
    old = os.umask(0o077)  # as in a pod
    try:
        temp = create_temp(
            "file://b", "a/b/obj", str(tmp_path / "a" / "b" / "obj"), anonymous=True, fsync=False, umask=umask
        )
        temp.commit()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a" / "b" / "obj").stat().st_mode) == 0o666 & ~umask
    for d in (tmp_path / "a", tmp_path / "a" / "b"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o777 & ~umask


def test_a_file_where_a_directory_should_be_is_a_store_error(tmp_path: Path, kind: str) -> None:
    (tmp_path / "a").write_bytes(b"file")
    with pytest.raises(StoreError, match="cannot create 'a/obj'"):
        create_temp(
            "file://b", "a/obj", str(tmp_path / "a" / "obj"), anonymous=True, fsync=False, umask=0o022
        )
    assert (tmp_path / "a").read_bytes() == b"file"
