"""On Kubernetes too, the project's runtime pods answer only their ETL's engine (the pod token)."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_ais_etl.cluster.kubernetes.gateway import TOKEN_KEY, gateway_secret_name
from airflow_ais_etl.etl.constants import TOKEN_ENV, TOKEN_HEADER
from tests.kubernetes.conftest import UPPER, make_bucket

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from airflow_ais_etl.service import AisEtl
    from tests.k8s_emulator.emulator import K8sEmulator
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]

TOKEN_REF = {"secretKeyRef": {"name": gateway_secret_name("token-etl"), "key": TOKEN_KEY}}


def test_pods_refuse_requests_without_the_token_and_the_engine_sends_it(
    api: AisEtl, cluster: Cluster, backend: KubernetesBackend, emulator: K8sEmulator
) -> None:
    data = make_bucket(cluster.work / "src", ["a.txt"])
    api.init_code("token-etl", UPPER)
    secret = backend.kube.read_secret(gateway_secret_name("token-etl"))
    assert secret is not None
    token = base64.b64decode(secret["data"][TOKEN_KEY]).decode()
    endpoints = backend.endpoints("token-etl")
    assert endpoints
    assert all(ep.token == token for ep in endpoints)
    pods, _ = backend.kube.list_pods("app.kubernetes.io/instance=token-etl")
    for pod in pods:  # referenced from the Secret, never a literal in a Pod
        env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
        assert env[TOKEN_ENV] == {"name": TOKEN_ENV, "valueFrom": TOKEN_REF}
    assert all(token not in json.dumps(p) for p in emulator.received_objects("pods"))

    url = f"{endpoints[0].url}/ais/@%23/bucket/a.txt"
    anonymous = requests.put(url, data=b"abc", timeout=10)
    assert anonymous.status_code == 401, anonymous.text
    forged = requests.put(url, data=b"abc", headers={TOKEN_HEADER: "forged"}, timeout=10)
    assert forged.status_code == 403, forged.text
    assert api.transform_object("token-etl", str(cluster.work / "src"), "a.txt") == data["a.txt"].upper()
