"""Temp files of objects being written: named (``.ais-etl-tmp-...``) or unnamed until they commit.

An unnamed file (``O_TMPFILE``) lives only as long as a descriptor refers to it, so an engine
killed while pods fill its temp files (the fd transport) leaves nothing behind; it gets its temp
name only at commit, right before the rename that makes the object appear whole.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from typing import Any

from airflow_ais_etl.dataplane.storage.tempnames import temp_name
from airflow_ais_etl.etl.errors import StorageError

__all__ = ["TempFile", "open_unnamed"]


class TempFile:
    """An object being written: its temp file's descriptor (write-only), to be renamed or removed."""

    __slots__ = ("bucket_url", "fd", "fsync", "name", "path", "tmp")

    def __init__(
        self, bucket_url: str, name: str, fd: int, tmp: str | None, path: str, *, fsync: bool = False
    ) -> None:
        self.bucket_url, self.name, self.fd, self.tmp, self.path = bucket_url, name, fd, tmp, path
        """``tmp`` None: an unnamed file (``O_TMPFILE``), named only at commit."""
        self.fsync = fsync
        """Flush it to disk before it gets its name (a bucket that syncs each object)."""

    def size(self) -> int:
        """Return how many bytes the temp file holds now."""
        return os.fstat(self.fd).st_size

    def commit(self) -> None:
        """Close the temp file and rename it over the object (it appears complete or not at all)."""
        fd, self.fd = self.fd, -1
        try:
            try:
                if self.fsync:
                    os.fsync(fd)
                if self.tmp is None and _named_first(fd, self.path):
                    return  # a new object: linked in place at once, complete
                if self.tmp is None:
                    directory, _, base = self.path.rpartition(os.sep)
                    self.tmp = directory + os.sep + temp_name(base)
                    _name_fd(fd, self.tmp)
            finally:
                os.close(fd)
            os.replace(self.tmp, self.path)
        except OSError as err:
            with contextlib.suppress(OSError):
                os.unlink(self.tmp or "")
            if isinstance(err, IsADirectoryError):
                raise StorageError(
                    f"bucket {self.bucket_url}: cannot write {self.name!r}: a directory has that name"
                ) from err
            raise StorageError(f"bucket {self.bucket_url}: cannot store {self.name!r}: {err}") from err

    def discard(self) -> None:
        """Close and remove the temp file (whatever a writer put in it is gone); again: nothing."""
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1
        if self.tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)


_TMPFILE = getattr(os, "O_TMPFILE", 0)
_AT_FDCWD = -100
_AT_SYMLINK_FOLLOW = 0x400


@functools.lru_cache(maxsize=1)
def _linkat() -> Any:
    """Return libc's ``linkat`` (``os.link`` cannot follow ``/proc/self/fd`` links), or ``None``."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).linkat
    except (OSError, AttributeError):
        return None


def _name_fd(fd: int, path: str) -> None:
    """Give the unnamed (``O_TMPFILE``) file behind ``fd`` the name ``path``."""
    import ctypes

    source = f"/proc/self/fd/{fd}".encode()
    if _linkat()(_AT_FDCWD, source, _AT_FDCWD, os.fsencode(path), _AT_SYMLINK_FOLLOW) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), path)  # (EEXIST comes out as FileExistsError)


def _named_first(fd: int, path: str) -> bool:
    """Link the unnamed file behind ``fd`` as ``path`` unless something has that name (then: False)."""
    try:
        _name_fd(fd, path)
    except FileExistsError:
        return False
    return True


def open_unnamed(directory: str) -> int:
    """Open an unnamed file in ``directory`` write-only; -1 where that cannot be (no ``O_TMPFILE``)."""
    if not _TMPFILE or _linkat() is None:
        return -1
    try:
        return os.open(directory, _TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666)
    except OSError:  # not supported by this file system, or no such directory yet
        return -1
