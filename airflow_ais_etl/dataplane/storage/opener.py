"""Open a bucket by path or URL: a local directory takes the fast path, anything else the object store."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from airflow_ais_etl.dataplane.storage.local import LocalBucket
from airflow_ais_etl.dataplane.storage.objectstore import ObjectStorageBucket
from airflow_ais_etl.dataplane.storage.urls import local_dir
from airflow_ais_etl.etl.errors import StorageError

if TYPE_CHECKING:
    from airflow_ais_etl.dataplane.storage.base import Bucket

__all__ = ["open_bucket"]


def open_bucket(
    url_or_path: str,
    *,
    conn_id: str | None = None,
    create: bool = False,
    fsync: bool = True,
    umask: int | None = None,
) -> Bucket:
    """Open the bucket at a path or URL.

    :param url_or_path: a directory, a ``file://`` URL, or any URL Airflow object storage serves
    :param conn_id: Airflow connection for object-store URLs
    :param create: create a missing local directory instead of failing
    :param fsync: for local directories, fsync every object (``False``: call :meth:`Bucket.sync`)
    :param umask: for local directories, the modes of new objects and directories (default: the process's)
    :raises StorageError: when a local directory is missing and ``create`` is false
    """
    if not url_or_path:
        raise StorageError("bucket URL is empty: pass a directory, file:// URL or object-store URL")
    local = local_dir(url_or_path)
    if local is None:
        return ObjectStorageBucket(url_or_path, conn_id=conn_id)
    path = os.path.abspath(os.path.expanduser(local))
    if os.path.isdir(path):
        return LocalBucket(path, fsync=fsync, umask=umask)
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
    return LocalBucket(path, fsync=fsync, umask=umask)
