"""Direct put on Kubernetes: pods deliver their results to their own gateway sidecar, under a grant
the job signed with the ETL's put key, so the Airflow worker carries none of the result bytes.

The sidecar writes where every pod may write: a directory under ``shared_paths`` (declared, not
mounted, in the emulator, whose pods see this machine's files) or an object store (``local://``
under the same directory here, so the test reads what the pods wrote on a real cluster too). A
destination the pods may not write is written by the engine, and the stats say so.
"""

from __future__ import annotations

import base64
import stat
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_ais_etl.cluster.gateway import CALLBACK_PREFIX
from airflow_ais_etl.cluster.kubernetes.gateway import (
    GATEWAY_CONTAINER,
    PUT_KEY,
    SECRET_KEY,
    gateway_secret_name,
)
from airflow_ais_etl.cluster.kubernetes.state import MD_CONFIGMAP
from airflow_ais_etl.cluster.sealedgrants import PUT_KEY_ENV
from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.dataplane.storage.base import RESERVED_PREFIX
from airflow_ais_etl.runtime.aisproto import compose_direct_put_url
from airflow_ais_etl.runtime.bucketfiles import process_umask
from airflow_ais_etl.service import AisEtl
from tests.kubernetes.conftest import make_bucket, validate_sent

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]

REVERSE = "def transform(data):\n    return data[::-1]\n"
NAMES = [f"obj-{i:02d}.bin" for i in range(24)] + ["with space.bin", "ünï/deep name.bin"]


@pytest.fixture
def shared(cluster: Cluster) -> Path:
    path = cluster.work / "shared"
    path.mkdir()
    return path


@pytest.fixture
def shared_backend(cluster: Cluster, shared: Path) -> Iterator[KubernetesBackend]:
    b = cluster.backend(shared_paths=[str(shared)], mount_shared_paths=cluster.emulator is None)
    try:
        yield b
    finally:
        try:
            AisEtl(b).stop_all()
            b.kube.delete_config_map(MD_CONFIGMAP)
        finally:
            b.close()
    if cluster.emulator is not None:
        assert validate_sent(cluster.emulator) > 0


def _objects(root: Path) -> dict[str, bytes]:
    """The bucket's objects, without the job's journal (under the reserved prefix)."""
    files = (p for p in root.rglob("*") if p.is_file())
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in files
        if not str(p.relative_to(root)).startswith(RESERVED_PREFIX)
    }


@pytest.mark.parametrize("kind", ["directory", "object-store"])
def test_pods_deliver_results_and_the_worker_carries_none(
    shared_backend: KubernetesBackend, shared: Path, kind: str
) -> None:
    api = AisEtl(shared_backend)
    src, out = shared / "src", shared / "out"
    data = make_bucket(src, NAMES)
    out.mkdir()
    dst = str(out) if kind == "directory" else f"local://{out}"
    api.init_code("put-etl", REVERSE, comm_type="hpull://", direct_put=True)
    stats = api.transform_bucket("put-etl", str(src), dst, OfflineOptions(num_workers=4))
    assert stats["state"] == "done", stats["errors"]
    assert _objects(out) == {name: payload[::-1] for name, payload in data.items()}
    assert stats["direct_put_objects"] == len(data)
    assert stats["bytes_via_engine"] == 0
    assert stats["bytes_out"] == sum(len(p) for p in data.values())
    if kind == "directory":  # the sidecar gives results the modes the worker's umask gives
        modes = {stat.S_IMODE((out / name).stat().st_mode) for name in data}
        assert modes == {0o666 & ~process_umask()}
        assert stat.S_IMODE((out / "ünï").stat().st_mode) == 0o777 & ~process_umask()
    targets = {t.id for t in shared_backend.targets()}
    assert {t for t, s in stats["targets"].items() if s["objects"]} == targets
    again = api.transform_bucket("put-etl", str(src), dst, OfflineOptions(skip_existing=True))
    assert (again["objects"], again["skipped"]) == (0, len(data))
    api.stop("put-etl")


def test_a_directory_the_pods_may_not_write_is_written_by_the_engine(
    shared_backend: KubernetesBackend, shared: Path, cluster: Cluster
) -> None:
    api = AisEtl(shared_backend)
    src, out = shared / "src", cluster.work / "not-shared"  # outside shared_paths
    data = make_bucket(src, NAMES[:6])
    api.init_code("put-etl", REVERSE, comm_type="hpull://", direct_put=True)
    stats = api.transform_bucket("put-etl", str(src), str(out), OfflineOptions())
    assert stats["state"] == "done", stats["errors"]
    assert _objects(out) == {name: payload[::-1] for name, payload in data.items()}
    assert stats["direct_put_objects"] == 0
    assert stats["bytes_via_engine"] == stats["bytes_out"] > 0
    api.stop("put-etl")


def test_only_the_sidecar_gets_the_put_key(shared_backend: KubernetesBackend) -> None:
    api = AisEtl(shared_backend)
    api.init_code("put-etl", REVERSE, comm_type="hpull://", direct_put=True)
    secret = shared_backend.kube.read_secret(gateway_secret_name("put-etl"))
    assert secret is not None
    assert PUT_KEY in secret["data"]
    pods, _ = shared_backend.kube.list_pods("app.kubernetes.io/instance=put-etl")
    assert pods
    for pod in pods:
        (sidecar,) = [c for c in pod["spec"]["initContainers"] if c["name"] == GATEWAY_CONTAINER]
        env = {e["name"]: e for e in sidecar["env"]}
        ref = env[PUT_KEY_ENV]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": gateway_secret_name("put-etl"), "key": PUT_KEY}
        for container in pod["spec"]["containers"]:
            assert PUT_KEY_ENV not in {e["name"] for e in container.get("env") or []}
            assert not container.get("envFrom")
    api.stop("put-etl")


def test_the_end_of_a_job_revokes_its_grant_at_the_sidecars(
    shared_backend: KubernetesBackend, shared: Path
) -> None:
    """What a pod does with a grant, done by hand: PUT a result to its sidecar; after the job's
    revoke, the same PUT stores nothing."""
    api = AisEtl(shared_backend)
    out = shared / "out"
    out.mkdir()
    api.init_code("put-etl", REVERSE, comm_type="hpull://", direct_put=True)
    grant = shared_backend.direct_put_grant("put-etl", str(out))
    assert grant is not None
    secret = shared_backend.kube.read_secret(gateway_secret_name("put-etl"))
    assert secret is not None
    path_secret = base64.b64decode(secret["data"][SECRET_KEY]).decode()
    target_url = f"http://pod{CALLBACK_PREFIX}{path_secret}"  # the pod's AIS_TARGET_URL, host aside
    tid = shared_backend.targets()[0].id

    def put(name: str) -> tuple[int, str]:
        url = compose_direct_put_url(grant.url_for(tid, name), target_url, name, "")
        resp = requests.put(url, data=b"by hand", timeout=30)
        return resp.status_code, resp.text

    assert put("in-time.bin")[0] == 200
    grant.revoke()
    status, text = put("too-late.bin")
    assert status == 403
    assert "the job ended (grant revoked)" in text
    assert _objects(out) == {"in-time.bin": b"by hand"}
    api.stop("put-etl")
