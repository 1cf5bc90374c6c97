"""Code and requirements live in one ConfigMap per ETL: referenced by env, never in a Pod, gone with the ETL."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.cluster.kubernetes.codemap import (
    MAX_CONFIG_MAP_BYTES,
    code_config_map,
    code_config_map_name,
)
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.msg import InitCodeMsg
from airflow_ais_etl.etl.runtimes import default_runtime
from tests.kubernetes.conftest import UPPER, make_bucket

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from airflow_ais_etl.service import AisEtl
    from tests.k8s_emulator.emulator import K8sEmulator
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]

SELECTOR = "app.kubernetes.io/instance=code-etl"
MARKER = "# code-config-map-marker-7f3a\n"
CODE = MARKER + UPPER
DEPS = "# deps-marker-91bc\n"  # comments only: nothing to download


def _code_maps(backend: KubernetesBackend) -> list[dict[str, object]]:
    # the ETL's last-logs and jobs ConfigMaps share its selector but outlive the pods (lastlogs.py)
    return backend.kube.list_config_maps(f"{SELECTOR},app.kubernetes.io/component=code")


def test_code_config_map_is_created_labelled_and_referenced(
    api: AisEtl, cluster: Cluster, backend: KubernetesBackend, emulator: K8sEmulator
) -> None:
    data = make_bucket(cluster.work / "src", ["a.txt", "b/c.txt"])
    api.init_code("code-etl", CODE, comm_type="hpull://", dependencies=DEPS)
    maps = backend.kube.list_config_maps(SELECTOR)
    assert [m["metadata"]["name"] for m in maps] == [code_config_map_name("code-etl")]
    assert maps[0]["data"] == {"code": CODE, "deps": DEPS}
    labels = maps[0]["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "airflow-ais-etl"
    assert labels["app.kubernetes.io/component"] == "code"
    for name, payload in data.items():  # the runtime reads the code from the ConfigMap-backed env
        assert api.transform_object("code-etl", str(cluster.work / "src"), name) == payload.upper()
    pods, _ = backend.kube.list_pods(SELECTOR)
    assert pods
    refs = 0
    for pod in pods:
        for c in pod["spec"]["containers"] + pod["spec"].get("initContainers", []):
            for e in c.get("env") or []:
                if e["name"] in ("AISTORE_CODE", "AISTORE_DEPS"):
                    key = "code" if e["name"] == "AISTORE_CODE" else "deps"
                    ref = {"configMapKeyRef": {"name": code_config_map_name("code-etl"), "key": key}}
                    assert e == {"name": e["name"], "valueFrom": ref}
                    refs += 1
    assert refs >= 2 * len(pods)  # the server container and the deps init container of each pod
    sent = emulator.received_objects("pods")
    assert sent
    for text in (MARKER.strip(), "deps-marker-91bc"):
        assert all(text not in json.dumps(p) for p in sent)
        assert all(text not in json.dumps(p) for p in pods)
    api.stop("code-etl")
    assert _code_maps(backend) == []


def test_code_config_map_is_deleted_with_the_etl_and_a_leak_by_the_next_stop(
    api: AisEtl, backend: KubernetesBackend
) -> None:
    api.init_code("code-etl", CODE, comm_type="hpull://")
    assert len(_code_maps(backend)) == 1
    api.delete("code-etl", force=True)
    assert _code_maps(backend) == []
    leaked = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": code_config_map_name("code-etl"),
            "labels": {
                "app.kubernetes.io/managed-by": "airflow-ais-etl",
                "app.kubernetes.io/instance": "code-etl",
            },
        },
        "data": {"code": "stale", "deps": ""},
    }
    backend.kube.create_config_map(leaked)
    assert backend.stop_pods("code-etl") is False  # nothing running, but the leak goes
    assert _code_maps(backend) == []
    backend.kube.create_config_map(leaked)
    api.init_code("code-etl", CODE, comm_type="hpull://")  # pre-clean replaces it
    assert [m["data"]["code"] for m in _code_maps(backend)] == [CODE]
    api.stop("code-etl")
    assert _code_maps(backend) == []


def test_oversize_code_is_refused_before_any_object_is_created(
    api: AisEtl, backend: KubernetesBackend
) -> None:
    big = "#" * MAX_CONFIG_MAP_BYTES + "\n" + UPPER  # beyond what the validated path lets through
    msg = InitCodeMsg(name="code-etl", runtime=default_runtime(), code=big, comm_type="hpull://")
    with pytest.raises(ValidationError) as err:
        backend.start_pods(msg)
    text = str(err.value)
    assert f"({len(big) + len('code') + len('deps')} bytes)" in text
    assert f"limited to {MAX_CONFIG_MAP_BYTES} bytes" in text
    assert _code_maps(backend) == []
    assert backend.kube.list_secrets(SELECTOR) == []
    assert backend.kube.list_pods(SELECTOR)[0] == []
    api.init_code("code-etl", CODE, comm_type="hpull://")  # the name stays usable
    api.stop("code-etl")
    assert _code_maps(backend) == []


def test_code_config_map_size_counts_keys_and_values() -> None:
    pod = {"metadata": {"labels": {"app.kubernetes.io/instance": "x"}}}
    fits = "a" * (MAX_CONFIG_MAP_BYTES - len("code") - len("deps"))
    msg = InitCodeMsg(name="x", runtime=default_runtime(), code=fits)
    assert code_config_map(msg, "default", pod)["data"]["code"] == fits
    with pytest.raises(ValidationError, match=r"ConfigMap, limited to 1048576 bytes"):
        code_config_map(InitCodeMsg(name="x", runtime=default_runtime(), code=fits + "é"), "default", pod)
