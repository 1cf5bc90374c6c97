"""A real target gateway on 127.0.0.1 with one local bucket granted for direct put: the receiver of the
runtime's direct-put tests (``runtime.streamput``, ``runtime.connpool``)."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow_ais_etl.cluster.bucketmap import register_bucket
from airflow_ais_etl.cluster.directput import grant, puts_store
from airflow_ais_etl.cluster.gateway import serve_gateway
from airflow_ais_etl.dataplane.storage.base import TEMP_PREFIX
from airflow_ais_etl.etl.naming import uname

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_ais_etl.cluster.gateway import GatewayServer


class GatewayTarget:
    """The running gateway, its granted bucket (``root``) and the direct-put token."""

    def __init__(self, server: GatewayServer, bucket: str, root: Path, token: str, secret: str) -> None:
        self.server = server
        self.bucket = bucket
        self.root = root
        self.token = token
        self.secret = secret
        self.accepted = 0
        """Connections accepted, when a test counts them."""

    def path(self, obj: str, token: str | None = None, secret: str | None = None) -> str:
        escaped = quote(uname("ais", self.bucket, obj), safe="")
        return f"/v1/etl/_object/{secret or self.secret}/{escaped}?uuid={token or self.token}"

    def url(self, obj: str, token: str | None = None) -> str:
        return self.server.url + self.path(obj, token)

    def temp_files(self) -> list[str]:
        """Temp files of objects being written in the bucket: named ones, and the unnamed ones
        (``O_TMPFILE``) that the gateway, running in this process, holds open."""
        named = [p.name for p in self.root.rglob("*") if p.name.startswith(TEMP_PREFIX)]
        unnamed = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                path = os.readlink(f"/proc/self/fd/{fd}")
                if path.startswith(f"{self.root}{os.sep}") and path.endswith(" (deleted)"):
                    unnamed.append(path)
        return named + unnamed


@contextlib.contextmanager
def gateway_target(tmp_path: Path, secret: str) -> Iterator[GatewayTarget]:
    """Serve a gateway whose bucket ``tmp_path/dst`` is granted for direct put; shut it down after."""
    root = tmp_path / "dst"
    root.mkdir()
    buckets_file = str(tmp_path / "state" / "buckets.json")
    ref = register_bucket(buckets_file, str(root))
    token = grant(puts_store(str(tmp_path / "state")), ref.name, ref.extra["url"])
    server, thread = serve_gateway("127.0.0.1", 0, secret, buckets_file)
    try:
        yield GatewayTarget(server, ref.name, root, token, secret)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
