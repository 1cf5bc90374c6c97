"""The gateway's path secret lives in one Secret per ETL: referenced, never literal, gone with the ETL."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.cluster.kubernetes.gateway import SECRET_KEY, gateway_secret_name
from tests.kubernetes.conftest import UPPER, make_bucket

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from airflow_ais_etl.service import AisEtl
    from tests.k8s_emulator.emulator import K8sEmulator
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]

SELECTOR = "app.kubernetes.io/instance=secret-etl"
SECRET_REF = {"secretKeyRef": {"name": gateway_secret_name("secret-etl"), "key": SECRET_KEY}}


def _secret_value(backend: KubernetesBackend) -> str:
    secrets = backend.kube.list_secrets(SELECTOR)
    assert [s["metadata"]["name"] for s in secrets] == [gateway_secret_name("secret-etl")]
    value = base64.b64decode(secrets[0]["data"][SECRET_KEY]).decode()
    assert value
    return value


def test_secret_is_created_referenced_and_never_literal(
    api: AisEtl, cluster: Cluster, backend: KubernetesBackend, emulator: K8sEmulator
) -> None:
    data = make_bucket(cluster.work / "src", ["a.txt", "b/c.txt"])
    api.init_code("secret-etl", UPPER, comm_type="hpull://")
    secret = _secret_value(backend)
    labels = backend.kube.list_secrets(SELECTOR)[0]["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "airflow-ais-etl"
    for name, payload in data.items():  # the gateway accepts the URL built from the Secret
        assert api.transform_object("secret-etl", str(cluster.work / "src"), name) == payload.upper()
    pods, _ = backend.kube.list_pods(SELECTOR)
    for pod in pods:
        sidecar = pod["spec"]["initContainers"][0]
        env = {e["name"]: e for e in sidecar["env"]}
        assert env["AIS_ETL_GATEWAY_SECRET"] == {"name": "AIS_ETL_GATEWAY_SECRET", "valueFrom": SECRET_REF}
        names = [e["name"] for e in pod["spec"]["containers"][0]["env"]]
        assert names.index("AIS_ETL_GATEWAY_SECRET") < names.index("AIS_TARGET_URL")
    sent = emulator.received_objects("pods")
    assert sent
    assert all(secret not in json.dumps(p) for p in sent)
    assert all(secret not in json.dumps(p) for p in pods)
    api.stop("secret-etl")
    assert backend.kube.list_secrets(SELECTOR) == []


def test_secret_is_renewed_per_start_and_deleted_with_the_etl(
    api: AisEtl, backend: KubernetesBackend
) -> None:
    api.init_code("secret-etl", UPPER, comm_type="hpull://")
    first = _secret_value(backend)
    api.stop("secret-etl")
    assert backend.kube.list_secrets(SELECTOR) == []
    api.init_code("secret-etl", UPPER, comm_type="hpull://")
    assert _secret_value(backend) != first
    api.delete("secret-etl", force=True)
    assert backend.kube.list_secrets(SELECTOR) == []


def test_leaked_secret_is_removed_by_the_next_start_or_stop(api: AisEtl, backend: KubernetesBackend) -> None:
    leaked = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": gateway_secret_name("secret-etl"),
            "labels": {
                "app.kubernetes.io/managed-by": "airflow-ais-etl",
                "app.kubernetes.io/instance": "secret-etl",
            },
        },
        "stringData": {SECRET_KEY: "stale"},
    }
    backend.kube.create_secret(leaked)
    assert backend.stop_pods("secret-etl") is False  # nothing running, but the leak goes
    assert backend.kube.list_secrets(SELECTOR) == []
    backend.kube.create_secret(leaked)
    api.init_code("secret-etl", UPPER, comm_type="hpull://")  # pre-clean replaces it
    assert _secret_value(backend) != "stale"
    api.stop("secret-etl")
    assert backend.kube.list_secrets(SELECTOR) == []
