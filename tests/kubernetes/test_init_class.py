"""``init_class`` ETLs on Kubernetes: AIS's ``runtime_python`` image runs unchanged.

On a real cluster the pod runs AIS's own image, which does what ``init_class`` needs. The emulator
has no images: its kubelet runs that image as ``python -m airflow_ais_etl.aisruntime`` (the one
image-to-program map, :func:`airflow_ais_etl.etl.runtimes.local_image_command`), so these tests
prove the pod manifests (validated against the Kubernetes schemas by the ``backend`` fixture) and
the data path through the gateway sidecar, byte for byte.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.etl.errors import EtlError
from tests.ais_servers.initclass import init_class_message, reverse_class
from tests.kubernetes.conftest import make_bucket

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from airflow_ais_etl.service import AisEtl
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]

NAMES = ["plain.txt", "with space.txt", "nested/ünï cödé.bin"]


@pytest.fixture
def k8s_pod_security(request: pytest.FixtureRequest) -> str:
    """AIS's image runs as root, as AIS runs it: ``baseline`` admits it, ``restricted`` does not."""
    return getattr(request, "param", "baseline")


def test_sdk_init_class_runs_ais_image_unchanged(
    api: AisEtl, cluster: Cluster, backend: KubernetesBackend, tmp_path: Path
) -> None:
    src, dst = cluster.work / "src", tmp_path / "dst"
    data = make_bucket(src, NAMES)
    message = init_class_message("cls-etl", reverse_class("fastapi"), NUM_WORKERS="1")
    info = api.init_spec("cls-etl", json.dumps(message))
    assert (info.state, info.pods) == ("running", len(backend.targets()))
    pods, _ = backend.kube.list_pods("app.kubernetes.io/instance=cls-etl")
    for pod in pods:
        server = pod["spec"]["containers"][0]
        assert server["image"] == message["runtime"]["image"]  # AIS's image, no command added
        assert "command" not in server
        env = {e["name"]: e.get("value") for e in server["env"]}
        assert env["ETL_CLASS_PAYLOAD"] == message["runtime"]["env"][0]["value"]
    for name, payload in data.items():
        got = api.transform_object("cls-etl", str(src), name, etl_args="a=1")
        assert isinstance(got, bytes)
        assert got.startswith(payload[::-1] + b"|a=1|"), name
    stats = api.transform_bucket("cls-etl", str(src), str(dst), OfflineOptions(num_workers=2))
    assert (stats["state"], stats["objects"], stats["errors"]) == ("done", len(NAMES), [])
    for name, payload in data.items():
        assert (dst / name).read_bytes() == payload[::-1]
    api.stop("cls-etl")


@pytest.mark.parametrize("k8s_pod_security", ["restricted"], indirect=True)
def test_restricted_namespace_refuses_ais_image_saying_why(api: AisEtl, k8s_pod_security: str) -> None:
    assert k8s_pod_security == "restricted"
    message = init_class_message("cls-etl", reverse_class("http"))
    with pytest.raises(EtlError) as info:
        api.init_spec("cls-etl", json.dumps(message))
    assert 'violates PodSecurity "restricted' in str(info.value)
    assert "runAsNonRoot" in str(info.value), str(info.value)
