"""Buckets: list, stat, stream and atomically write objects in a directory or an object store.

Plain directories and ``file://`` URLs take a fast path built on ``open``/``os.scandir`` (Airflow's
``ObjectStoragePath`` costs about ten times more per small file); any other URL goes through
``ObjectStoragePath`` so Airflow connections supply the credentials. Airflow is imported lazily,
only when such a bucket is opened.

Every write is atomic: a destination object is either complete or absent.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import hashlib
import io
import itertools
import os
import secrets
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from stat import S_ISDIR, S_ISLNK, S_ISREG
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from airflow_ais_etl.etl.errors import StorageError
from airflow_ais_etl.etl.naming import validate_object_name, validate_prefix

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

__all__ = [
    "RESERVED_PREFIX",
    "TEMP_PREFIX",
    "AtomicWriter",
    "Bucket",
    "LocalBucket",
    "ObjInfo",
    "ObjectNotFoundError",
    "ObjectStorageBucket",
    "bucket_id",
    "normalize_url",
    "open_bucket",
]

RESERVED_PREFIX = ".ais-etl/"
"""Objects under this prefix belong to the project (probes, markers) and are never listed."""

TEMP_PREFIX = ".ais-etl-tmp-"
"""File-name prefix of in-progress writes; listings skip them, :meth:`Bucket.clean_partials` removes them."""

DEFAULT_CHUNK = 1 << 20
_SPOOL_MAX = 8 << 20
_NAME_MAX = 255
_HOST_TAG = hashlib.sha1(socket.gethostname().encode(), usedforsecurity=False).hexdigest()[:8]


class ObjectNotFoundError(StorageError, FileNotFoundError):
    """Report that an object does not exist (callers may skip vanished sources)."""


@dataclass(frozen=True)
class ObjInfo:
    """One object: its name in the bucket, its size, and a cheap token that changes with its content."""

    name: str
    size: int
    version: str


class AtomicWriter(abc.ABC):
    """Write one object: ``write`` chunks, then leave the ``with`` block cleanly to commit.

    An exception inside the block, or :meth:`discard`, throws everything away and leaves no object.
    """

    def __init__(self, bucket_url: str, name: str) -> None:
        self.bucket_url = bucket_url
        self.name = name
        self.size = 0
        self._done = False

    @abc.abstractmethod
    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append ``data`` to the object being written."""

    @abc.abstractmethod
    def _commit(self) -> None: ...

    @abc.abstractmethod
    def _discard(self) -> None: ...

    def commit(self) -> None:
        """Make the object visible under its final name (idempotent; discards on failure)."""
        if self._done:
            return
        self._done = True
        try:
            self._commit()
        except BaseException as err:
            self._discard()
            if isinstance(err, StorageError):
                raise
            if isinstance(err, Exception):
                raise StorageError(f"bucket {self.bucket_url}: cannot store {self.name!r}: {err}") from err
            raise

    def discard(self) -> None:
        """Throw away what was written; the destination is left untouched (idempotent)."""
        if self._done:
            return
        self._done = True
        self._discard()

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


class Bucket(abc.ABC):
    """A flat namespace of objects with ``/``-separated names."""

    url: str

    def list(self, prefix: str = "") -> Iterator[ObjInfo]:
        """Yield every object whose name starts with ``prefix``, recursively, sorted by name.

        In-progress writes and the reserved ``.ais-etl/`` prefix are never listed.
        """
        prefix = validate_prefix(prefix) if prefix else ""
        for info in self._list(prefix):
            if not info.name.startswith(RESERVED_PREFIX):
                yield info

    def list_reserved(self, prefix: str = RESERVED_PREFIX) -> Iterator[str]:
        """Yield the names of the project's own objects under ``prefix`` (within ``.ais-etl/``), sorted."""
        if not prefix.startswith(RESERVED_PREFIX):
            raise StorageError(f"bucket {self.url}: {prefix!r} is not under the reserved {RESERVED_PREFIX!r}")
        for info in self._list(prefix):
            yield info.name

    @abc.abstractmethod
    def _list(self, prefix: str) -> Iterator[ObjInfo]:
        """Yield objects under ``prefix`` in name order, reserved ones included, temp files excluded."""

    @abc.abstractmethod
    def stat(self, name: str) -> ObjInfo | None:
        """Return the object's info, or ``None`` when it does not exist."""

    @abc.abstractmethod
    def read_chunks(self, name: str, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        """Yield the object's content in chunks of at most ``chunk_size`` bytes."""

    @abc.abstractmethod
    def read_bytes(self, name: str) -> bytes:
        """Return the whole object (for small objects)."""

    def local_path(self, name: str) -> str | None:
        """Return the object's file name on this machine (for ``fqn``), or ``None`` if it has none."""
        return None

    @abc.abstractmethod
    def writer(self, name: str) -> AtomicWriter:
        """Return an atomic writer for ``name``; use it as a context manager."""

    def exists(self, name: str) -> bool:
        """Tell whether the object exists."""
        return self.stat(name) is not None

    @abc.abstractmethod
    def delete(self, name: str) -> bool:
        """Remove the object; return whether it existed."""

    @abc.abstractmethod
    def check_writable(self) -> None:
        """Raise :class:`StorageError` naming the bucket unless objects can be written to it."""

    def clean_partials(self, stale_after: float = 600.0) -> int:
        """Remove in-progress writes left by killed processes; return how many were removed."""
        return 0

    def sync(self) -> None:
        """Make every object written so far durable (a no-op where each write already is)."""

    def write_bytes(self, name: str, data: bytes) -> None:
        """Store ``data`` as object ``name`` atomically."""
        with self.writer(name) as w:
            w.write(data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


# --------------------------------------------------------------------------------------------
# Local directories


class _TempNames:
    """Temp-file names unique per host, process and write: a random tag per process plus a counter.

    Cheaper than fresh randomness per file (no system call); reset in a forked child.
    """

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.head = f"{TEMP_PREFIX}{_HOST_TAG}-{os.getpid()}-{secrets.token_hex(4)}"
        self.counter = itertools.count()


_TEMP_NAMES = _TempNames()


def _temp_name(basename: str) -> str:
    """Build a temp-file name that says which host and process own it."""
    head = f"{_TEMP_NAMES.head}{next(_TEMP_NAMES.counter):x}-"
    if len(basename) + len(head) <= _NAME_MAX and basename.isascii():
        return head + basename
    room = _NAME_MAX - len(head.encode())
    tail = basename.encode()[:room].decode(errors="ignore")
    return head + tail


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _abandoned(filename: str, mtime: float, stale_after: float, now: float) -> bool:
    """Tell whether a temp file belongs to a dead local process or has not changed for a while."""
    parts = filename[len(TEMP_PREFIX) :].split("-", 3)
    if len(parts) == 4 and parts[0] == _HOST_TAG and parts[1].isdigit():
        pid = int(parts[1])
        if pid != os.getpid() and not _pid_alive(pid):
            return True
    return now - mtime > stale_after


class _FileWriter(AtomicWriter):
    """Write to a temp file next to the destination, fsync, then ``os.replace``."""

    def __init__(self, bucket_url: str, name: str, path: str, *, fsync: bool) -> None:
        super().__init__(bucket_url, name)
        self._path = path
        directory, base = os.path.split(path)
        self._tmp = os.path.join(directory, _temp_name(base))
        self._fsync = fsync
        try:
            try:
                self._file: IO[bytes] = open(self._tmp, "xb")
            except FileNotFoundError:
                os.makedirs(directory, exist_ok=True)
                self._file = open(self._tmp, "xb")
        except OSError as err:
            raise StorageError(f"bucket {bucket_url}: cannot create {name!r}: {err}") from err

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._done:
            raise StorageError(f"bucket {self.bucket_url}: write to {self.name!r} after commit/discard")
        try:
            self._file.write(data)
        except OSError as err:
            raise StorageError(f"bucket {self.bucket_url}: cannot write {self.name!r}: {err}") from err
        self.size += len(data)

    def _commit(self) -> None:
        f = self._file
        f.flush()
        if self._fsync:
            os.fsync(f.fileno())
        f.close()
        os.replace(self._tmp, self._path)

    def _discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)


class LocalBucket(Bucket):
    """A directory on this machine; object names map to relative file paths.

    :param path: the directory
    :param fsync: fsync each object before it becomes visible; without it a writer that needs
        durability calls :meth:`sync` once per batch (atomicity against process kills holds either way)
    """

    def __init__(self, path: str, *, fsync: bool = True) -> None:
        self.root = os.path.abspath(path)
        self.url = "file://" + self.root
        self._prefix = self.root if self.root.endswith(os.sep) else self.root + os.sep
        self._fsync = fsync
        self._real_root = os.path.realpath(self.root)
        self._dirs_inside: set[str] = set()
        """Directories (relative, ``""`` = root) already resolved to a place inside the bucket."""

    def _inside(self, real: str) -> bool:
        root = self._real_root
        return real == root or real.startswith(root if root.endswith(os.sep) else root + os.sep)

    def _path(self, name: str) -> str:
        """Validate ``name`` and return its path; refuse anything that resolves outside the bucket.

        Directories already seen inside the bucket are remembered, so the common case costs one
        ``lstat`` of the object itself instead of resolving every component of the path.
        """
        if not _plainly_valid(name):
            validate_object_name(name)
        path = self._prefix + name
        parent = name.rpartition("/")[0]
        if not parent or parent in self._dirs_inside:
            try:
                if not S_ISLNK(os.lstat(path).st_mode):
                    return path
            except OSError:
                return path  # nothing there (yet): the parent is known to be inside
        real = os.path.realpath(path)
        if not self._inside(real):
            raise StorageError(f"bucket {self.url}: object {name!r} resolves outside the bucket")
        if parent:
            real_dir = os.path.realpath(os.path.join(self.root, parent))
            if os.path.isdir(real_dir) and self._inside(real_dir):
                self._dirs_inside.add(parent)
        return path

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
        """Walk ``directory`` depth-first in global name order (a directory sorts as ``name/``)."""
        try:
            with os.scandir(directory) as it:
                entries = list(it)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as err:
            raise StorageError(f"bucket {self.url}: cannot list {directory}: {err}") from err
        keyed = []
        for entry in entries:
            fname = entry.name
            if fname.startswith(TEMP_PREFIX):
                continue
            name = rel + fname
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                if entry.is_symlink():
                    if entry.is_dir():
                        continue  # never follow directory links: no loops, no escapes
                    if not self._inside(os.path.realpath(entry.path)):
                        continue
            except OSError:
                continue
            if is_dir:
                key = name + "/"
                if key == RESERVED_PREFIX and not prefix.startswith(RESERVED_PREFIX):
                    continue  # never walk the project's own objects for a plain listing
                if not (key.startswith(prefix) or prefix.startswith(key)):
                    continue
            else:
                key = name
                if not name.startswith(prefix):
                    continue
            keyed.append((key, is_dir, entry))
        keyed.sort(key=lambda item: item[0])
        for key, is_dir, entry in keyed:
            if is_dir:
                yield from self._walk(entry.path, key, prefix)
                continue
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            if not entry.is_file():
                continue
            yield self._info(key, st)

    def stat(self, name: str) -> ObjInfo | None:
        path = self._path(name)
        try:
            st = os.stat(path)
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
        # Plain os calls: a buffered file object costs several extra system calls per small object.
        path = self._path(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError) as err:
            raise ObjectNotFoundError(f"bucket {self.url}: object {name!r} does not exist") from err
        except OSError as err:
            raise StorageError(f"bucket {self.url}: cannot read {name!r}: {err}") from err
        try:
            st = os.fstat(fd)
            if not S_ISREG(st.st_mode):
                if S_ISDIR(st.st_mode):
                    raise ObjectNotFoundError(f"bucket {self.url}: object {name!r} does not exist")
                return _read_to_end(fd, [], DEFAULT_CHUNK)
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
        if name.rpartition("/")[2].startswith(TEMP_PREFIX):
            raise StorageError(f"bucket {self.url}: object names may not start with {TEMP_PREFIX!r}")
        path = self._path(name)
        directory, _, base = path.rpartition(os.sep)
        tmp = directory + os.sep + _temp_name(base)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            try:
                fd = os.open(tmp, flags, 0o666)
            except FileNotFoundError:
                os.makedirs(directory, exist_ok=True)
                fd = os.open(tmp, flags, 0o666)
        except OSError as err:
            raise StorageError(f"bucket {self.url}: cannot create {name!r}: {err}") from err
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException as err:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(err, IsADirectoryError):
                raise StorageError(
                    f"bucket {self.url}: cannot write {name!r}: a directory has that name"
                ) from err
            if isinstance(err, OSError):
                raise StorageError(f"bucket {self.url}: cannot store {name!r}: {err}") from err
            raise

    def local_path(self, name: str) -> str | None:
        return self._path(name)

    def writer(self, name: str) -> AtomicWriter:
        if name.rpartition("/")[2].startswith(TEMP_PREFIX):
            raise StorageError(f"bucket {self.url}: object names may not start with {TEMP_PREFIX!r}")
        path = self._path(name)
        if os.path.isdir(path):
            raise StorageError(f"bucket {self.url}: cannot write {name!r}: a directory has that name")
        return _FileWriter(self.url, name, path, fsync=self._fsync)

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
        _syncfs(self.root)

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
                    if _abandoned(fname, os.stat(path).st_mtime, stale_after, now):
                        os.unlink(path)
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed


def _read_to_end(fd: int, parts: list[bytes], chunk: int) -> bytes:
    while piece := os.read(fd, chunk):
        parts.append(piece)
    return b"".join(parts)


def _syncfs(directory: str) -> None:
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


# --------------------------------------------------------------------------------------------
# Object stores (through Airflow's ObjectStoragePath)


def _version(info: dict[str, Any]) -> str:
    """Pick the cheapest change token an fsspec ``info`` offers (etag, else a timestamp) plus the size."""
    for key in ("ETag", "etag", "md5Hash", "generation", "version_id", "VersionId"):
        value = info.get(key)
        if value:
            return f"{str(value).strip(chr(34))}-{info.get('size', 0)}"
    for key in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(key)
        if value:
            stamp = value.timestamp() if hasattr(value, "timestamp") else value
            return f"{stamp}-{info.get('size', 0)}"
    return f"-{info.get('size', 0)}"


class _SpoolWriter(AtomicWriter):
    """Collect the object locally (memory, then a temp file) and upload it in one call on commit."""

    def __init__(self, bucket: ObjectStorageBucket, name: str, path: str) -> None:
        super().__init__(bucket.url, name)
        self._fs = bucket.fs
        self._path = path
        self._mem: io.BytesIO | None = io.BytesIO()
        self._spill: IO[bytes] | None = None
        self._spilled: str | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._done:
            raise StorageError(f"bucket {self.bucket_url}: write to {self.name!r} after commit/discard")
        if self._mem is not None:
            if self.size + len(data) <= _SPOOL_MAX:
                self._mem.write(data)
                self.size += len(data)
                return
            fd, self._spilled = tempfile.mkstemp(prefix="ais-etl-spool-")
            self._spill = os.fdopen(fd, "wb")
            self._spill.write(self._mem.getbuffer())
            self._mem = None
        assert self._spill is not None
        self._spill.write(data)
        self.size += len(data)

    def _commit(self) -> None:
        try:
            if self._mem is not None:
                self._fs.pipe_file(self._path, self._mem.getvalue())
            else:
                assert self._spill is not None
                self._spill.close()
                self._fs.put_file(self._spilled, self._path)
        except BaseException:
            # A failed upload must not leave a partial object behind.
            with contextlib.suppress(Exception):
                if self._fs.exists(self._path):
                    self._fs.rm_file(self._path)
            raise
        finally:
            self._drop_spool()

    def _discard(self) -> None:
        self._drop_spool()

    def _drop_spool(self) -> None:
        self._mem = None
        if self._spill is not None:
            with contextlib.suppress(OSError):
                self._spill.close()
        if self._spilled is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._spilled)
            self._spilled = None


class ObjectStorageBucket(Bucket):
    """Any fsspec-backed store Airflow knows (``s3://``, ``gs://``, ``memory://`` once attached, ...).

    :param url: the bucket URL, possibly with a key prefix (``s3://bucket/some/prefix``)
    :param conn_id: the Airflow connection that holds the credentials
    """

    def __init__(self, url: str, *, conn_id: str | None = None) -> None:
        from airflow.sdk import ObjectStoragePath

        self.url = url.rstrip("/")
        self.conn_id = conn_id
        try:
            root = ObjectStoragePath(url, conn_id=conn_id)
            self.fs = root.fs
        except Exception as err:
            raise StorageError(f"bucket {url}: cannot open it through Airflow object storage: {err}") from err
        self.root = str(root.path).rstrip("/")

    def _path(self, name: str) -> str:
        validate_object_name(name)
        return f"{self.root}/{name}"

    def _list(self, prefix: str) -> Iterator[ObjInfo]:
        base = prefix.rpartition("/")[0]
        start = f"{self.root}/{base}" if base else self.root
        try:
            found = self.fs.find(start, detail=True)
        except FileNotFoundError:
            return
        except Exception as err:
            raise StorageError(f"bucket {self.url}: cannot list {prefix!r}: {err}") from err
        cut = len(self.root) + 1
        infos = []
        for path, info in found.items():
            if info.get("type", "file") != "file":
                continue
            name = path[cut:] if path.startswith(self.root + "/") else path.lstrip("/")
            if not name.startswith(prefix):
                continue
            if name.rpartition("/")[2].startswith(TEMP_PREFIX):
                continue
            infos.append(ObjInfo(name, int(info.get("size") or 0), _version(info)))
        infos.sort(key=lambda i: i.name)
        yield from infos

    def stat(self, name: str) -> ObjInfo | None:
        path = self._path(name)
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        except Exception as err:
            raise StorageError(f"bucket {self.url}: cannot stat {name!r}: {err}") from err
        if info.get("type", "file") != "file":
            return None
        return ObjInfo(name, int(info.get("size") or 0), _version(info))

    def read_chunks(self, name: str, chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
        path = self._path(name)
        try:
            f = self.fs.open(path, "rb")
        except FileNotFoundError as err:
            raise ObjectNotFoundError(f"bucket {self.url}: object {name!r} does not exist") from err
        except Exception as err:
            raise StorageError(f"bucket {self.url}: cannot read {name!r}: {err}") from err
        with f:
            while chunk := f.read(chunk_size):
                yield bytes(chunk)

    def read_bytes(self, name: str) -> bytes:
        path = self._path(name)
        try:
            return bytes(self.fs.cat_file(path))
        except FileNotFoundError as err:
            raise ObjectNotFoundError(f"bucket {self.url}: object {name!r} does not exist") from err
        except Exception as err:
            raise StorageError(f"bucket {self.url}: cannot read {name!r}: {err}") from err

    def writer(self, name: str) -> AtomicWriter:
        return _SpoolWriter(self, name, self._path(name))

    def delete(self, name: str) -> bool:
        path = self._path(name)
        try:
            if not self.fs.exists(path):
                return False
            self.fs.rm_file(path)
        except FileNotFoundError:
            return False
        except Exception as err:
            raise StorageError(f"bucket {self.url}: cannot delete {name!r}: {err}") from err
        return True

    def check_writable(self) -> None:
        probe = f"{self.root}/{RESERVED_PREFIX}probe-{secrets.token_hex(6)}"
        try:
            self.fs.pipe_file(probe, b"ok")
            self.fs.rm_file(probe)
        except Exception as err:
            raise StorageError(f"bucket {self.url} is not writable: {err}") from err


# --------------------------------------------------------------------------------------------
# Opening and naming buckets


def _local_dir(url_or_path: str) -> str | None:
    """Return the directory of a plain path or ``file://`` URL, ``None`` for other schemes."""
    if "://" not in url_or_path:
        return url_or_path
    parts = urlsplit(url_or_path)
    if parts.scheme.lower() != "file":
        return None
    if parts.netloc not in ("", "localhost"):
        raise StorageError(f"file URL {url_or_path!r} names a remote host {parts.netloc!r}; use file:///path")
    return unquote(parts.path) or "/"


def normalize_url(url_or_path: str) -> str:
    """Return one spelling per bucket: ``file:///abs/dir`` for local ones, no trailing slash otherwise."""
    local = _local_dir(url_or_path)
    if local is not None:
        return "file://" + os.path.abspath(os.path.expanduser(local))
    scheme, _, rest = url_or_path.partition("://")
    return scheme.lower() + "://" + rest.rstrip("/")


def bucket_id(url: str) -> str:
    """Return a stable short name for the bucket at ``url`` (``b-`` + 16 hex digits)."""
    digest = hashlib.sha1(normalize_url(url).encode(), usedforsecurity=False).hexdigest()
    return "b-" + digest[:16]


def open_bucket(
    url_or_path: str, *, conn_id: str | None = None, create: bool = False, fsync: bool = True
) -> Bucket:
    """Open the bucket at a path or URL.

    :param url_or_path: a directory, a ``file://`` URL, or any URL Airflow object storage serves
    :param conn_id: Airflow connection for object-store URLs
    :param create: create a missing local directory instead of failing
    :param fsync: for local directories, fsync every object (``False``: call :meth:`Bucket.sync`)
    :raises StorageError: when a local directory is missing and ``create`` is false
    """
    if not url_or_path:
        raise StorageError("bucket URL is empty: pass a directory, file:// URL or object-store URL")
    local = _local_dir(url_or_path)
    if local is None:
        return ObjectStorageBucket(url_or_path, conn_id=conn_id)
    path = os.path.abspath(os.path.expanduser(local))
    if os.path.isdir(path):
        return LocalBucket(path, fsync=fsync)
    if os.path.exists(path):
        raise StorageError(f"bucket path {path} is not a directory")
    if not create:
        raise StorageError(
            f"bucket directory {path} does not exist: check the path, or create it "
            f"(mkdir -p {path}) before using it as a source"
        )
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise StorageError(f"cannot create bucket directory {path}: {err}") from err
    return LocalBucket(path, fsync=fsync)
