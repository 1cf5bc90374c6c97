"""The runtime image's files are enough: the gateway sidecar and the runtime run from a copy of
exactly what the Dockerfile copies, on a Python without site-packages (``-S -E``: no Airflow, no
third-party package, as in the image), so a module the image forgets fails here.

The gateway then serves a source object and takes a direct put under a signed grant, the
Kubernetes sidecar's work, into a directory; an object-store destination fails with a message
that names what is missing.
"""

from __future__ import annotations

import http.client
import os
import posixpath
import re
import shutil
import subprocess
import sys
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest

from airflow_ais_etl.cluster.bucketmap import bucket_name, register_bucket
from airflow_ais_etl.cluster.sealedgrants import PUT_KEY_ENV, seal
from airflow_ais_etl.etl.naming import uname
from tests.runtime.test_image import DOCKERFILE, REPO_ROOT, _copied, _instructions

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

SECRET = "ImAgEsEcRt"
KEY = "image-put-key"
BARE = [sys.executable, "-S", "-E"]
"""A Python that sees the standard library and the current directory only."""


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Copy what the Dockerfile copies, where it copies it (under ``/opt/airflow-ais-etl``)."""
    root = tmp_path_factory.mktemp("image") / "opt"
    for word, rest in _instructions(DOCKERFILE.read_text()):
        if word != "COPY":
            continue
        *sources, dest = rest.split()
        for src in sources:  # each lands at its own relative path under /opt/airflow-ais-etl
            into_dir = f"/opt/airflow-ais-etl/{posixpath.dirname(src.rstrip('/'))}/"
            assert dest in (f"/opt/airflow-ais-etl/{src}", into_dir if not src.endswith("/") else ""), (
                src,
                dest,
            )
    for src in _copied(_instructions(DOCKERFILE.read_text())):
        if src.endswith("/"):
            shutil.copytree(REPO_ROOT / src, root / src, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (root / src).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / src, root / src)
    return root


def test_the_bare_python_has_no_third_party_package(image_tree: Path) -> None:
    for module in ("airflow", "fsspec", "psutil"):
        probe = subprocess.run([*BARE, "-c", f"import {module}"], cwd=image_tree, capture_output=True)
        assert probe.returncode != 0, module


def test_every_runtime_module_imports_from_the_image_files(image_tree: Path) -> None:
    script = (
        "import importlib, pkgutil, airflow_ais_etl.runtime as r\n"
        "for m in pkgutil.walk_packages(r.__path__, 'airflow_ais_etl.runtime.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "print('imported', r.__file__)\n"
    )
    done = subprocess.run([*BARE, "-c", script], cwd=image_tree, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"imported {image_tree}")


@pytest.fixture
def image_gateway(image_tree: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    buckets = tmp_path / "state" / "buckets.json"
    env = {"PATH": os.environ["PATH"], "AIS_ETL_GATEWAY_SECRET": SECRET, PUT_KEY_ENV: KEY}
    cmd = [*BARE, "-m", "airflow_ais_etl.cluster.gateway", "--port", "0", "--buckets", str(buckets)]
    proc = subprocess.Popen(
        cmd, cwd=image_tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on http://([0-9.]+):(\d+)", line)
        assert match, f"{line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        yield f"{match[1]}:{match[2]}", buckets
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def _request(address: str, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _path(bucket: str, obj: str, query: str = "") -> str:
    return f"/v1/etl/_object/{SECRET}/{quote(uname('ais', bucket, obj), safe='')}" + (
        f"?{query}" if query else ""
    )


def test_the_gateway_runs_from_the_image_files(image_gateway: tuple[str, Path], tmp_path: Path) -> None:
    address, buckets = image_gateway
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "d").mkdir(parents=True)
    (src / "d" / "in ü.bin").write_bytes(b"source bytes")
    dst.mkdir()
    ref = register_bucket(str(buckets), str(src))
    assert _request(address, "GET", _path(ref.name, "d/in ü.bin")) == (200, b"source bytes")

    bucket, norm = bucket_name(str(dst))
    token = seal(KEY.encode(), bucket, norm, int(time.time()) + 60, 0o027)
    assert _request(address, "PUT", _path(bucket, "new/out.bin", f"uuid={token}"), b"result") == (200, b"")
    assert (dst / "new" / "out.bin").read_bytes() == b"result"
    assert (dst / "new" / "out.bin").stat().st_mode & 0o777 == 0o640
    assert (dst / "new").stat().st_mode & 0o777 == 0o750

    store, store_url = bucket_name(f"local://{dst}")
    token = seal(KEY.encode(), store, store_url, int(time.time()) + 60)
    status, text = _request(address, "PUT", _path(store, "x.bin", f"uuid={token}"), b"result")
    assert status == 500
    assert b"No module named 'airflow'" in text
    assert b"init the ETL without direct put" in text
    assert not (dst / "x.bin").exists()
