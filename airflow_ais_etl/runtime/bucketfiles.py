"""Files of a bucket directory: open a source, write a result atomically (temp file, then its name).

Shared by the engine's local buckets (``dataplane.storage.local``) and the pods of the file transport
(``runtime.filetransport``), which open and write the job's objects themselves: one way to read and
write a bucket's files, standard library only, so the runtime image ships it.

A result goes to a temp file next to its object and gets the object's name only when complete, so
an object is complete or absent even when its writer is killed. The temp file is unnamed
(``O_TMPFILE``) where the file system allows it: a killed writer then leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
from stat import S_ISREG
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.runtime.tempnames import temp_name

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "NotFound",
    "StoreError",
    "TempFile",
    "create_temp",
    "is_inside",
    "open_in",
    "open_source",
    "open_unnamed",
    "process_umask",
    "resolve_inside",
]


class StoreError(OSError):
    """Reading or writing an object failed; the message names the bucket and the object."""


class NotFound(StoreError):
    """The source object does not exist (or is no regular file)."""


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
                raise StoreError(
                    f"bucket {self.bucket_url}: cannot write {self.name!r}: a directory has that name"
                ) from err
            raise StoreError(f"bucket {self.bucket_url}: cannot store {self.name!r}: {err}") from err

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


def create_temp(
    bucket_url: str, name: str, path: str, *, anonymous: bool, fsync: bool, umask: int | None = None
) -> TempFile:
    """Create the temp file of object ``name`` (to be stored at ``path``), its directories too.

    ``anonymous``: an unnamed file (``O_TMPFILE``), named only at commit, so a writer killed while
    it fills the file leaves nothing behind; where the file system has none, a named temp file.
    ``umask``: give the file and new directories the modes this umask gives, not the process's
    (a pod writes for the engine, with the engine's umask).
    """
    directory, _, base = path.rpartition(os.sep)
    fd = -1
    if anonymous:
        fd = open_unnamed(directory)
        if fd < 0 and not os.path.isdir(directory):
            with contextlib.suppress(OSError):  # (a failure is reported by the open below)
                _make_dirs(directory, umask)
            fd = open_unnamed(directory)
    tmp = None if fd >= 0 else directory + os.sep + temp_name(base)
    try:
        if tmp is not None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            try:
                fd = os.open(tmp, flags, 0o666)
            except FileNotFoundError:
                _make_dirs(directory, umask)
                fd = os.open(tmp, flags, 0o666)
        if umask is not None:
            os.fchmod(fd, 0o666 & ~umask)
    except OSError as err:
        if fd >= 0:
            TempFile(bucket_url, name, fd, tmp, path).discard()
        raise StoreError(f"bucket {bucket_url}: cannot create {name!r}: {err}") from err
    return TempFile(bucket_url, name, fd, tmp, path, fsync=fsync)


def process_umask() -> int:
    """Return this process's umask without setting it (other threads may create files meanwhile).

    Read from ``/proc/self/status``; where that cannot be read, 077: results private to the user.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8) & 0o777
    except (OSError, ValueError, IndexError):
        pass
    return 0o077


def _make_dirs(directory: str, umask: int | None) -> None:
    """Create ``directory`` and its missing parents (with the modes ``umask`` gives, if set)."""
    if umask is None:
        os.makedirs(directory, exist_ok=True)
        return
    missing = []
    while not os.path.isdir(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # (made meanwhile by another writer)
            os.mkdir(d)
            os.chmod(d, 0o777 & ~umask)


def open_source(bucket_url: str, name: str, path: str, resolve: Callable[[], str]) -> tuple[int, int]:
    """Open object ``name`` (at ``path``) read-only; return the descriptor of a regular file and its size.

    ``path`` is opened without following a link; a link is followed only to where ``resolve()``
    says (it raises when the link leads outside the bucket).
    """
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO never blocks the open
    try:
        try:
            fd = os.open(path, flags | os.O_NOFOLLOW)
        except OSError as err:
            if err.errno != errno.ELOOP:
                raise
            fd = os.open(resolve(), flags)
    except (FileNotFoundError, NotADirectoryError) as err:
        raise NotFound(f"bucket {bucket_url}: object {name!r} does not exist") from err
    except StoreError:
        raise
    except OSError as err:
        raise StoreError(f"bucket {bucket_url}: cannot read {name!r}: {err}") from err
    st = os.fstat(fd)
    if not S_ISREG(st.st_mode):
        os.close(fd)
        raise NotFound(f"bucket {bucket_url}: object {name!r} is not a regular file")
    return fd, st.st_size


def is_inside(real: str, real_root: str) -> bool:
    """Tell whether the real path ``real`` is ``real_root`` or lies under it."""
    return real == real_root or real.startswith(
        real_root if real_root.endswith(os.sep) else real_root + os.sep
    )


def resolve_inside(bucket_url: str, name: str, path: str, real_root: str) -> str:
    """Return where ``path`` (object ``name``) really leads; refuse a place outside ``real_root``."""
    real = os.path.realpath(path)
    if not is_inside(real, real_root):
        raise StoreError(f"bucket {bucket_url}: object {name!r} resolves outside the bucket")
    return real


def open_in(bucket_url: str, root: str, real_root: str, name: str) -> tuple[int, int]:
    """Open object ``name`` of the bucket directory ``root`` read-only; its descriptor and size (:func:`open_source`).

    A link is followed only to a place under ``real_root`` (the real path of ``root``); for a name
    in a directory, the file the kernel actually opened must lie there too (``/proc/self/fd``: a
    directory link, even one swapped in after the job checked the name, leads nowhere else).
    """
    path = f"{root}/{name}"
    fd, size = open_source(bucket_url, name, path, lambda: resolve_inside(bucket_url, name, path, real_root))
    if "/" in name:
        try:
            opened = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            opened = os.path.realpath(path)
        if not is_inside(opened, real_root):
            os.close(fd)
            raise StoreError(f"bucket {bucket_url}: object {name!r} resolves outside the bucket")
    return fd, size


_TMPFILE = getattr(os, "O_TMPFILE", 0)
_AT_FDCWD = -100
_AT_SYMLINK_FOLLOW = 0x400
_AT_EMPTY_PATH = 0x1000
_REFUSED = (errno.ENOENT, errno.EPERM, errno.EINVAL)
"""What ``linkat(AT_EMPTY_PATH)`` says where the kernel does not let this process use it."""

_by_descriptor = True
"""Whether to name files by their descriptor (``linkat(fd, "", ..., AT_EMPTY_PATH)``) first.

Linux 6.10 and later let a process link a file it opened itself; older kernels want
``CAP_DAC_READ_SEARCH`` and refuse. Through the descriptor is 3-5 us cheaper per object
than through ``/proc/self/fd`` (tmpfs, 4 KiB objects: bench/README.md); the first refusal
switches this process to ``/proc`` for good."""


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

    global _by_descriptor
    linkat, target = _linkat(), os.fsencode(path)
    if _by_descriptor:
        if linkat(fd, b"", _AT_FDCWD, target, _AT_EMPTY_PATH) == 0:
            return
        if ctypes.get_errno() not in _REFUSED:
            raise _link_error(path)  # (EEXIST comes out as FileExistsError)
        # refused, or the directory is gone: the /proc way tells which
    if linkat(_AT_FDCWD, f"/proc/self/fd/{fd}".encode(), _AT_FDCWD, target, _AT_SYMLINK_FOLLOW) != 0:
        raise _link_error(path)
    _by_descriptor = False  # the /proc way works where the descriptor's was refused


def _link_error(path: str) -> OSError:
    """The error of the ``linkat`` call just made (its ``errno`` picks the subclass)."""
    import ctypes

    errno_ = ctypes.get_errno()
    return OSError(errno_, os.strerror(errno_), path)


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
