"""Buckets in object stores, through Airflow's ``ObjectStoragePath`` (``s3://``, ``gs://``, ...).

Airflow connections supply the credentials, and Airflow is imported only when such a bucket is
opened. A write is spooled locally (memory, then a temp file) and uploaded in one call on commit,
so an object store never shows a partial object.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import tempfile
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
from airflow_ais_etl.etl.errors import StorageError
from airflow_ais_etl.etl.naming import validate_object_name

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["ObjectStorageBucket"]

_SPOOL_MAX = 8 << 20


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


def _make_parent(fs: Any, path: str) -> None:
    """Create the parent directory where the file system needs one (``local://``); object stores don't."""
    if getattr(fs, "auto_mkdir", True) is False:
        fs.makedirs(fs._parent(path), exist_ok=True)


class _SpoolWriter(AtomicWriter):
    """Collect the object locally (memory, then a temp file) and upload it in one call on commit."""

    uploads = True

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
            _make_parent(self._fs, self._path)
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
            _make_parent(self.fs, probe)
            self.fs.pipe_file(probe, b"ok")
            self.fs.rm_file(probe)
        except Exception as err:
            raise StorageError(f"bucket {self.url} is not writable: {err}") from err
