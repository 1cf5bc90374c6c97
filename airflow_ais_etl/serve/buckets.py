"""The served buckets: ``ais://NAME`` is the directory ``ROOT/NAME``, and nothing outside ROOT is reachable.

Bucket names follow AIS's rules (letters, digits, ``-``, ``_``, ``.``; no ``..``), so a name is one
path component; a bucket directory that is a symlink is refused, and object names go through
:class:`~airflow_ais_etl.dataplane.storage.local.LocalBucket`, which refuses names that resolve
outside the bucket (``..``, absolute names, symlinks pointing out). Directories are created private.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from airflow_ais_etl.cluster.private import private_dir
from airflow_ais_etl.dataplane.storage.local import LocalBucket
from airflow_ais_etl.serve.errors import BAD_REQUEST, CONFLICT, NOT_FOUND, AisHttpError

__all__ = ["BucketRoot", "parse_bck_path"]

SERVED_PROVIDERS = ("", "ais")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def parse_bck_path(path: str) -> tuple[str, str]:
    """Split AIS's ``provider/@ns#/name/`` bucket path (the ``bck_to`` query) into provider and name."""
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) == 3 and parts[1] in ("@#", "@"):
        return parts[0], parts[2]
    if len(parts) == 2 and "://" not in path:
        return parts[0], parts[1]
    raise AisHttpError(BAD_REQUEST, f"invalid bucket path {path!r}: expected provider/@#/name/")


class BucketRoot:
    """Map AIS buckets to directories under one root."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(os.path.realpath(private_dir(root)))

    @staticmethod
    def url(name: str) -> str:
        return f"ais://{name}"

    def check(self, name: str, provider: str | None = "ais") -> Path:
        """Return the directory of bucket ``name``; refuse other providers and names that are not one component."""
        provider = provider or ""
        if provider not in SERVED_PROVIDERS:
            raise AisHttpError(
                BAD_REQUEST,
                f"provider {provider!r} is not served: ais-etl serve serves ais:// buckets only, as "
                "directories under the server's --buckets root (copy the data into an ais:// bucket, "
                "or use the Airflow operators, which read object-store URLs)",
            )
        if not _NAME.fullmatch(name) or ".." in name or name.startswith("."):
            raise AisHttpError(
                BAD_REQUEST,
                f"invalid bucket name {name!r}: use 1-64 letters, digits, '-', '_' or '.', not "
                "starting with '.' and without '..'",
            )
        return self.root / name

    def exists(self, name: str, provider: str | None = "ais") -> bool:
        path = self.check(name, provider)
        return path.is_dir() and not path.is_symlink()

    def open(self, name: str, provider: str | None = "ais") -> LocalBucket:
        """Open an existing bucket; a missing one is AIS's 404 ``bucket "ais://NAME" does not exist``."""
        path = self.check(name, provider)
        if path.is_symlink():
            raise AisHttpError(BAD_REQUEST, f"bucket {self.url(name)} is a symlink: not served")
        if not path.is_dir():
            raise AisHttpError(NOT_FOUND, f'bucket "{self.url(name)}" does not exist')
        return LocalBucket(str(path), fsync=False)

    def create(self, name: str, provider: str | None = "ais", *, exist_ok: bool = False) -> LocalBucket:
        path = self.check(name, provider)
        if path.exists() or path.is_symlink():
            if not exist_ok:
                raise AisHttpError(CONFLICT, f'bucket "{self.url(name)}" already exists')
            return self.open(name, provider)
        private_dir(path)
        return LocalBucket(str(path), fsync=False)

    def destroy(self, name: str, provider: str | None = "ais") -> None:
        self.open(name, provider)
        shutil.rmtree(self.check(name, provider))

    def names(self) -> list[str]:
        return sorted(
            e.name
            for e in os.scandir(self.root)
            if e.is_dir(follow_symlinks=False) and _NAME.fullmatch(e.name) and not e.name.startswith(".")
        )
