"""``ais-etl serve --backend kubernetes``: the SDK drives ETLs whose pods the Kubernetes backend runs
(the API emulator, or a real cluster when ``KUBECONFIG`` is set)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest
import requests
from aistore.sdk.etl import ETLConfig

from tests.kubernetes.conftest import backend, cluster  # noqa: F401 (the Kubernetes tests' fixtures)
from tests.serve.conftest import start_server, stop_server

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration]


def test_sdk_inline_and_bucket_transform_on_the_kubernetes_backend(
    cluster: Cluster,  # noqa: F811
    backend: KubernetesBackend,  # noqa: F811
    tmp_path: Path,
) -> None:
    served = start_server(
        tmp_path,
        "--backend",
        "kubernetes",
        "--kubernetes-conn-id",
        cluster.conn_id,
        "--namespace",
        cluster.namespace,
    )
    try:
        client = served.client()
        bucket = client.bucket("k8s-src").create()
        data = {f"o-{i}": b"kubernetes object %d" % i for i in range(6)}
        for name, payload in data.items():
            bucket.object(name).get_writer().put_content(payload)
        msg = {
            "id": "k8s-serve-etl",
            "communication": "hpush://",
            "timeout": "2m",
            "code": base64.b64encode(b"def transform(data):\n    return data.upper()\n").decode(),
        }
        assert requests.put(f"{served.url}/v1/etl", json=msg, timeout=180).status_code == 200
        assert [(e.id, e.stage) for e in client.cluster().list_etls()] == [("k8s-serve-etl", "Running")]
        assert (
            bucket.object("o-1").get_reader(etl=ETLConfig("k8s-serve-etl")).read_all() == data["o-1"].upper()
        )
        dst = client.bucket("k8s-dst")
        assert client.job(bucket.transform("k8s-serve-etl", dst)).wait(timeout=120, verbose=False).success
        assert {e.name: dst.object(e.name).get_reader().read_all() for e in dst.list_all_objects()} == {
            k: v.upper() for k, v in data.items()
        }
        client.etl("k8s-serve-etl").stop()
        client.etl("k8s-serve-etl").delete()
    finally:
        stop_server(served)
