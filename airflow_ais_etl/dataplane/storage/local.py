"""Buckets that are directories on this machine: the fast path, built on ``open`` and ``os.scandir``.

Plain directories and ``file://`` URLs come here (Airflow's ``ObjectStoragePath`` costs about ten
times more per small file). Writes go to a temp file next to the destination and are renamed into
place, so an object is complete or absent even when the writer is killed; names never resolve
outside the bucket's directory.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
import tempfile
import time
from stat import S_ISDIR, S_ISLNK, S_ISREG
from typing import IO, TYPE_CHECKING, Any

from airflow_ais_etl.dataplane.storage.base import (
    DEFAULT_CHUNK,
    RESERVED_PREFIX,
    TEMP_PREFIX,
    AtomicWriter,
    Bucket,
    ObjectNotFoundError,
    ObjInfo,
)
from airflow_ais_etl.etl.errors import AisEtlError, StorageError
from airflow_ais_etl.etl.naming import validate_object_name
from airflow_ais_etl.runtime.bucketfiles import StoreError, TempFile, create_temp, is_inside
from airflow_ais_etl.runtime.tempnames import abandoned

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["LocalBucket", "syncfs"]


def _plainly_valid(name: str) -> bool:
    """Tell cheaply whether ``name`` is certainly a valid object name (``False``: check it fully)."""
    return (
        bool(name)
        and name[0] not in "/."
        and name[-1] != "/"
        and "//" not in name
        and "/." not in name
        and "\x00" not in name
    )


class _FileWriter(AtomicWriter):
    """Stream an object into its temp file (``runtime.bucketfiles``), which gets the object's name on commit."""

    def __init__(self, bucket_url: str, name: str, temp: TempFile) -> None:
        super().__init__(bucket_url, name)
        self._temp = temp

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._done:
            raise StorageError(f"bucket {self.bucket_url}: write to {self.name!r} after commit/discard")
        view = memoryview(data).cast("B")
        size = view.nbytes
        try:
            while view:
                view = view[os.write(self._temp.fd, view) :]
        except OSError as err:
            raise StorageError(f"bucket {self.bucket_url}: cannot write {self.name!r}: {err}") from err
        self.size += size

    def _commit(self) -> None:
        try:
            self._temp.commit()
        except StoreError as err:
            raise StorageError(str(err)) from err

    def _discard(self) -> None:
        self._temp.discard()


class LocalBucket(Bucket):
    """A directory on this machine; object names map to relative file paths.

    :param path: the directory
    :param fsync: fsync each object before it becomes visible; without it a writer that needs
        durability calls :meth:`sync` once per batch (atomicity against process kills holds either way)
    """

    def __init__(self, path: str, *, fsync: bool = True, umask: int | None = None) -> None:
        """:param umask: give new objects and directories the modes this umask gives, not the process's
        (the gateway writes direct puts for a job, with the job's umask)."""
        self.root = os.path.abspath(path)
        self.url = "file://" + self.root
        self._prefix = self.root if self.root.endswith(os.sep) else self.root + os.sep
        self._fsync = fsync
        self._umask = umask
        self._real_root = os.path.realpath(self.root)
        self._dirs_inside: set[str] = set()
        """Directories (relative, ``""`` = root) already resolved to a place inside the bucket."""

    def _inside(self, real: str) -> bool:
        return is_inside(real, self._real_root)

    def _path(self, name: str) -> str:
        """Validate ``name`` and return its path; refuse anything that resolves outside the bucket."""
        return self._resolve(name)[0]

    def _resolve(self, name: str) -> tuple[str, os.stat_result | None]:
        """Return ``_path(name)`` and, when it is no link, its ``lstat`` (``None``: link or nothing).

        Directories already seen inside the bucket are remembered, so the common case costs one
        ``lstat`` of the object itself instead of resolving every component of the path, and
        :meth:`stat` reuses that ``lstat`` (one system call per object for a resume's checks).
        """
        if not _plainly_valid(name):
            validate_object_name(name)
        path = self._prefix + name
        parent = name.rpartition("/")[0]
        if not parent or parent in self._dirs_inside:
            try:
                st = os.lstat(path)
            except OSError:
                return path, None  # nothing there (yet): the parent is known to be inside
            if not S_ISLNK(st.st_mode):
                return path, st
        real = os.path.realpath(path)
        if not self._inside(real):
            raise StorageError(f"bucket {self.url}: object {name!r} resolves outside the bucket")
        if parent:
            real_dir = os.path.realpath(os.path.join(self.root, parent))
            if os.path.isdir(real_dir) and self._inside(real_dir):
                self._dirs_inside.add(parent)
        return path, None

    def _write_path(self, name: str) -> str:
        """Return where ``name`` is written: like :meth:`_path`, without its ``lstat`` when it can.

        A write creates a temp file (``O_EXCL``: never through a link) and renames it over the
        name, and a rename replaces a symbolic link there instead of following it; so in a
        directory known to be inside the bucket the object itself needs no check.
        """
        if self._plainly_inside(name):
            return self._prefix + name
        return self._path(name)

    def _plainly_inside(self, name: str) -> bool:
        """Tell whether ``name`` is plainly valid in a directory known to be inside the bucket."""
        return _plainly_valid(name) and ((cut := name.rfind("/")) < 0 or name[:cut] in self._dirs_inside)

    def _info(self, name: str, st: os.stat_result) -> ObjInfo:
        return ObjInfo(name, st.st_size, f"{st.st_mtime_ns}-{st.st_size}")

    def _list(self, prefix: str) -> Iterator[ObjInfo]:
        base = prefix.rpartition("/")[0]
        start = os.path.join(self.root, base) if base else self.root
        rel = base + "/" if base else ""
        if base:
            real = os.path.realpath(start)
            if not self._inside(real):
                raise StorageError(f"bucket {self.url}: prefix {prefix!r} resolves outside the bucket")
        yield from self._walk(start, rel, prefix)

    def _walk(self, directory: str, rel: str, prefix: str) -> Iterator[ObjInfo]:
        """Walk ``directory`` depth-first in global name order (a directory sorts as ``name/``).

        Only the sorted names of one directory are held at a time (no ``DirEntry`` objects), and
        each file is stat'ed when its turn comes: a million-object bucket lists in bounded memory.
        """
        skip = len(rel)
        keys = self._entries(directory, rel, prefix)
        try:  # files are stat'ed relative to their directory: a shorter lookup per file
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as err:
            raise StorageError(f"bucket {self.url}: cannot list {directory}: {err}") from err
        info_of = self._info
        try:
            for key in keys:
                if key[-1] == "/":
                    yield from self._walk(os.path.join(directory, key[skip:-1]), key, prefix)
                    continue
                try:
                    st = os.stat(key[skip:], dir_fd=dir_fd)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                if S_ISREG(st.st_mode):
                    yield info_of(key, st)
        finally:
            os.close(dir_fd)

    def _entries(self, directory: str, rel: str, prefix: str) -> list[str]:
        """Return the sorted keys of what the listing may show (a directory's key ends with ``/``)."""
        keys = []
        try:
            with os.scandir(directory) as it:
                for entry in it:
                    name = entry.name
                    if name.startswith(TEMP_PREFIX):
                        continue
                    # a plain file is told by its directory entry; anything else is looked at closer
                    is_dir = False if entry.is_file(follow_symlinks=False) else self._entry_kind(entry)
                    if is_dir is None:
                        continue
                    key = rel + name + ("/" if is_dir else "")
                    if self._selected(key, is_dir, prefix):
                        keys.append(key)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as err:
            raise StorageError(f"bucket {self.url}: cannot list {directory}: {err}") from err
        keys.sort()
        return keys

    def _entry_kind(self, entry: os.DirEntry[str]) -> bool | None:
        """Return whether ``entry`` is a directory, or ``None`` to skip it (links out of the bucket)."""
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            if entry.is_symlink():
                if entry.is_dir():
                    return None  # never follow directory links: no loops, no escapes
                if not self._inside(os.path.realpath(entry.path)):
                    return None
        except OSError:
            return None
        return is_dir

    @staticmethod
    def _selected(key: str, is_dir: bool, prefix: str) -> bool:
        """Tell whether a file matches ``prefix``, or a directory may hold files that do."""
        if not is_dir:
            return key.startswith(prefix)
        if key == RESERVED_PREFIX and not prefix.startswith(RESERVED_PREFIX):
            return False  # never walk the project's own objects for a plain listing
        return key.startswith(prefix) or prefix.startswith(key)

    def exists(self, name: str) -> bool:
        """Like ``stat(name) is not None``, without building an ``ObjInfo``: a resume asks it per object."""
        _path, st = self._resolve(name)
        if st is None:  # a link, nothing there, or a directory not yet known to be inside
            return self.stat(name) is not None
        return S_ISREG(st.st_mode)

    def stat(self, name: str) -> ObjInfo | None:
        path, st = self._resolve(name)
        try:
            st = st or os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            raise StorageError(f"bucket {self.url}: cannot stat {name!r}: {err}") from err
        if not S_ISREG(st.st_mode):
            return None
        return self._info(name, st)

    def _open(self, name: str) -> IO[bytes]:
        path = self._path(name)
        try:
            return open(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as err:
            raise ObjectNotFoundError(f"bucket {self.url}: object {name!r} does not exist") from err
        except OSError as err:
            raise StorageError(f"bucket {self.url}: cannot read {name!r}: {err}") from err

    def read_chunks(self, name: str, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        with self._open(name) as f:
            while chunk := f.read(chunk_size):
                yield chunk

    def read_bytes(self, name: str) -> bytes:
        data = self._read_whole(name, None)
        assert data is not None  # (no limit)
        return data

    def read_small(self, name: str, limit: int) -> bytes | None:
        """:meth:`Bucket.read_small` with one lookup of the name: the size comes from the opened file."""
        return self._read_whole(name, limit)

    def _read_whole(self, name: str, limit: int | None) -> bytes | None:
        """Read the object; ``None`` when it is a regular file of more than ``limit`` bytes.

        With a ``limit``, anything but a regular file does not exist (as for :meth:`stat`), and a
        FIFO is opened without waiting for a writer (never read).
        """
        # Plain os calls: a buffered file object costs several extra system calls per small object.
        flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_NONBLOCK if limit is not None else 0)  # (FIFOs)
        try:
            if self._plainly_inside(name):  # no lstat first: only a link there needs checking
                try:
                    fd = os.open(self._prefix + name, flags | os.O_NOFOLLOW)
                except OSError as err:
                    if err.errno != errno.ELOOP:
                        raise
                    fd = os.open(self._path(name), flags)
            else:
                fd = os.open(self._path(name), flags)
        except (FileNotFoundError, NotADirectoryError) as err:
            raise ObjectNotFoundError(f"bucket {self.url}: object {name!r} does not exist") from err
        except OSError as err:
            raise StorageError(f"bucket {self.url}: cannot read {name!r}: {err}") from err
        try:
            st = os.fstat(fd)
            if not S_ISREG(st.st_mode):
                if S_ISDIR(st.st_mode) or limit is not None:
                    raise ObjectNotFoundError(f"bucket {self.url}: object {name!r} does not exist")
                return _read_to_end(fd, [], DEFAULT_CHUNK)
            if limit is not None and st.st_size > limit:
                return None
            # A regular file returns less than asked only at its end; read one byte more than its
            # size so a file that grew meanwhile is read to its (new) end too.
            first = os.read(fd, st.st_size + 1)
            if len(first) <= st.st_size:
                return first
            return _read_to_end(fd, [first], DEFAULT_CHUNK)
        except OSError as err:
            if isinstance(err, StorageError):
                raise
            raise StorageError(f"bucket {self.url}: cannot read {name!r}: {err}") from err
        finally:
            os.close(fd)

    def write_bytes(self, name: str, data: bytes) -> None:
        """Store ``data`` atomically (temp file + rename) with a handful of plain system calls."""
        temp = self.begin_write(name)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(temp.fd, view) :]
        except BaseException as err:
            temp.discard()
            if isinstance(err, OSError):
                raise StorageError(f"bucket {self.url}: cannot store {name!r}: {err}") from err
            raise
        try:
            temp.commit()
        except StoreError as err:
            raise StorageError(str(err)) from err

    def begin_write(self, name: str, *, anonymous: bool = False) -> TempFile:
        """Create ``name``'s temp file next to it, open write-only: commit renames it into place.

        ``anonymous``: an unnamed file (``O_TMPFILE``) that gets its temp name only at commit
        (``runtime.bucketfiles``).
        """
        return self._create_temp(name, self.write_target(name), anonymous=anonymous)

    def _create_temp(self, name: str, path: str, *, anonymous: bool) -> TempFile:
        try:
            return create_temp(
                self.url, name, path, anonymous=anonymous, fsync=self._fsync, umask=self._umask
            )
        except StoreError as err:
            raise StorageError(str(err)) from err

    def write_target(self, name: str) -> str:
        """Return the path where object ``name`` is written, after every check a write makes."""
        if name.rpartition("/")[2].startswith(TEMP_PREFIX):
            raise StorageError(f"bucket {self.url}: object names may not start with {TEMP_PREFIX!r}")
        return self._write_path(name)

    def refused_writes(self, names: Sequence[str]) -> dict[int, Exception]:
        """Check many result names as :meth:`write_target` does; return the refused ones' errors by index.

        A name that is plainly valid in a directory known to be inside the bucket costs string
        checks only (:meth:`write_target` would add two calls a name): a file transfer checks
        every name.
        """
        refused: dict[int, Exception] = {}
        as_is = self._plainly_inside
        for i, name in enumerate(names):
            if as_is(name):
                continue
            try:
                self.write_target(name)
            except (AisEtlError, OSError) as exc:
                refused[i] = exc
        return refused

    @property
    def real_root(self) -> str:
        """The directory's real path (links resolved): a link in the bucket may lead only below it."""
        return self._real_root

    @property
    def fsyncs(self) -> bool:
        """Whether each object is flushed to disk before it gets its name."""
        return self._fsync

    def local_path(self, name: str) -> str | None:
        return self._path(name)

    def writer(self, name: str) -> AtomicWriter:
        """Stream ``name`` into an unnamed temp file where the file system has them: a writer killed
        midway then leaves nothing behind. A directory of that name fails the commit, which says so."""
        return _FileWriter(self.url, name, self._create_temp(name, self.write_target(name), anonymous=True))

    def delete(self, name: str) -> bool:
        try:
            os.unlink(self._path(name))
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as err:
            raise StorageError(f"bucket {self.url}: cannot delete {name!r}: {err}") from err
        return True

    def sync(self) -> None:
        """Flush the bucket's file system to disk: one ``syncfs`` covers a whole batch of writes."""
        if self._fsync:
            return
        syncfs(self.root)

    def check_writable(self) -> None:
        if not os.path.isdir(self.root):
            raise StorageError(f"bucket {self.url}: directory {self.root} does not exist")
        try:
            fd, probe = tempfile.mkstemp(prefix=TEMP_PREFIX + "probe-", dir=self.root)
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            raise StorageError(f"bucket {self.url} is not writable: {err}") from err

    def clean_partials(self, stale_after: float = 600.0) -> int:
        now = time.time()
        removed = 0
        for directory, _dirs, files in os.walk(self.root):
            for fname in files:
                if not fname.startswith(TEMP_PREFIX):
                    continue
                path = os.path.join(directory, fname)
                try:
                    if abandoned(fname, os.stat(path).st_mtime, stale_after, now):
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed


def _read_to_end(fd: int, parts: list[bytes], chunk: int) -> bytes:
    while piece := os.read(fd, chunk):
        parts.append(piece)
    return b"".join(parts)


def syncfs(directory: str) -> None:
    """Call ``syncfs(2)`` on the file system holding ``directory`` (``sync(2)`` where it is missing)."""
    libc = _libc()
    if libc is None:
        os.sync()
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        if libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc if hasattr(libc, "syncfs") else None
    except OSError:
        return None
