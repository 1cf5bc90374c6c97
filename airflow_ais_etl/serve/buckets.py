"""The served buckets: ``ais://NAME`` is the directory ``ROOT/NAME``; configured object-store buckets
(``--bucket-url aws/NAME=s3://...``) are their URL; nothing else is reachable.

Both kinds are opened through the project's one bucket layer (``open_bucket``) and used through the
:class:`~airflow_ais_etl.dataplane.storage.base.Bucket` contract. Bucket names follow AIS's rules
(letters, digits, ``-``, ``_``, ``.``; no ``..``), so a name is one path component; a bucket directory
that is a symlink is refused, and object names are validated by the bucket (no ``..``, no absolute
names, no symlinks pointing out). Directories are created private. Configured buckets are not ours to
create or destroy.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_ais_etl.cluster.private import private_dir
from airflow_ais_etl.dataplane.storage.local import LocalBucket
from airflow_ais_etl.dataplane.storage.opener import open_bucket
from airflow_ais_etl.serve.errors import BAD_REQUEST, CONFLICT, NOT_FOUND, AisHttpError
from airflow_ais_etl.serve.remotes import FLAG_HELP, index_remotes, normalize_provider

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_ais_etl.dataplane.storage.base import Bucket
    from airflow_ais_etl.serve.remotes import RemoteBucket

__all__ = ["BucketRoot", "parse_bck_path"]

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
    """Map AIS buckets to directories under one root, and configured ones to their object-store URLs."""

    def __init__(self, root: str | os.PathLike[str], remotes: Iterable[RemoteBucket] = ()) -> None:
        self.root = Path(os.path.realpath(private_dir(root)))
        self.remotes = index_remotes(list(remotes))

    def open_configured(self) -> list[str]:
        """Open every configured bucket once; return why those that cannot be opened now cannot.

        The first object-store bucket imports Airflow's object storage (seconds): done before
        the server says it listens, no client's first request waits for it (or times out).
        A bucket that cannot be opened yet is still served: its requests report the error.
        """
        problems = []
        for remote in self.remotes.values():
            try:
                self.open(remote.name, remote.provider)
            except Exception as err:  # any failure of the store or its connection: reported, not fatal
                problems.append(f"{self.url(remote.name, remote.provider)} ({remote.url}): {err}")
        return problems

    @staticmethod
    def url(name: str, provider: str | None = "ais") -> str:
        """The bucket as AIS names it in messages: ``ais://NAME``, ``aws://NAME``."""
        return f"{normalize_provider(provider)}://{name}"

    def _remote(self, name: str, provider: str | None) -> RemoteBucket | None:
        """The configured bucket, ``None`` for a directory; refuse what is neither."""
        provider = normalize_provider(provider)
        remote = self.remotes.get((provider, name))
        if remote is None and provider != "ais":
            raise AisHttpError(
                BAD_REQUEST,
                f"bucket {self.url(name, provider)} is not served: ais-etl serve serves ais:// buckets "
                f"as directories under its --buckets root, and object-store buckets configured with "
                f"{FLAG_HELP}",
            )
        if not _NAME.fullmatch(name) or ".." in name or name.startswith("."):
            raise AisHttpError(
                BAD_REQUEST,
                f"invalid bucket name {name!r}: use 1-64 letters, digits, '-', '_' or '.', not "
                "starting with '.' and without '..'",
            )
        return remote

    def check(self, name: str, provider: str | None = "ais") -> None:
        """Refuse unserved providers, unconfigured remote buckets and names that are not one component."""
        self._remote(name, provider)

    def location(self, name: str, provider: str | None = "ais") -> tuple[str, str | None]:
        """What the engine opens: the bucket's directory or URL, and its Airflow connection."""
        remote = self._remote(name, provider)
        if remote is not None:
            return remote.url, remote.conn_id
        return str(self.root / name), None

    def exists(self, name: str, provider: str | None = "ais") -> bool:
        if self._remote(name, provider) is not None:
            return True
        path = self.root / name
        return path.is_dir() and not path.is_symlink()

    def open(self, name: str, provider: str | None = "ais") -> Bucket:
        """Open a bucket; a missing directory is AIS's 404 ``bucket "ais://NAME" does not exist``."""
        remote = self._remote(name, provider)
        if remote is not None:
            return open_bucket(remote.url, conn_id=remote.conn_id, fsync=False)
        path = self.root / name
        if path.is_symlink():
            raise AisHttpError(BAD_REQUEST, f"bucket {self.url(name)} is a symlink: not served")
        if not path.is_dir():
            raise AisHttpError(NOT_FOUND, f'bucket "{self.url(name)}" does not exist')
        return LocalBucket(str(path), fsync=False)

    def _not_ours(self, name: str, provider: str | None, what: str) -> AisHttpError:
        return AisHttpError(
            BAD_REQUEST,
            f"bucket {self.url(name, provider)} is a configured object-store bucket: ais-etl serve does "
            f"not {what} it (manage it in its object store)",
        )

    def create(self, name: str, provider: str | None = "ais", *, exist_ok: bool = False) -> Bucket:
        if self._remote(name, provider) is not None:
            if not exist_ok:
                raise self._not_ours(name, provider, "create")
            return self.open(name, provider)
        path = self.root / name
        if path.exists() or path.is_symlink():
            if not exist_ok:
                raise AisHttpError(CONFLICT, f'bucket "{self.url(name)}" already exists')
            return self.open(name, provider)
        private_dir(path)
        return LocalBucket(str(path), fsync=False)

    def destroy(self, name: str, provider: str | None = "ais") -> None:
        if self._remote(name, provider) is not None:
            raise self._not_ours(name, provider, "destroy")
        self.open(name, provider)
        shutil.rmtree(self.root / name)

    def names(self) -> list[tuple[str, str]]:
        """Every served bucket as (provider, name): the directories, then the configured buckets."""
        local = sorted(
            e.name
            for e in os.scandir(self.root)
            if e.is_dir(follow_symlinks=False) and _NAME.fullmatch(e.name) and not e.name.startswith(".")
        )
        configured = sorted(self.remotes)
        return [("ais", n) for n in local if ("ais", n) not in self.remotes] + configured
