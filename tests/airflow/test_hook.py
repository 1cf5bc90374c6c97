from __future__ import annotations

import asyncio
import inspect
import json
import re
from typing import TYPE_CHECKING

import pytest
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_ais_etl.cluster.base import HealthStatus
from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
from airflow_ais_etl.cluster.kubernetes.podknobs import PodKnobs
from airflow_ais_etl.etl.state import EtlState
from airflow_ais_etl.hooks.ais_etl import AisEtlAsyncHook, AisEtlHook
from airflow_ais_etl.hooks.health import HealthVerdict, assess
from airflow_ais_etl.hooks.settings import (
    FORM_PREFIX,
    AisEtlSettings,
    format_link,
    parse_extras,
    setting_fields,
)

if TYPE_CHECKING:
    from pathlib import Path


def _set_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, extra: dict) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "ais_etl", "extra": extra})
    )


def test_parse_extras_defaults_and_values() -> None:
    assert parse_extras({}) == AisEtlSettings()
    s = parse_extras(
        {
            "backend": "Kubernetes",
            "home": " /x ",
            "namespace": "ais",
            "node_selector": "role=ais, zone = a",
            "extra__ais_etl__link_template": "https://g/d?etl={etl_name}",
        }
    )
    assert s.backend == "kubernetes"
    assert s.home == "/x"
    assert s.namespace == "ais"
    assert s.node_selector == {"role": "ais", "zone": "a"}
    assert s.link_template == "https://g/d?etl={etl_name}"
    assert parse_extras({"node_selector": '{"a": 1}'}).node_selector == {"a": "1"}


def test_every_kubernetes_setting_becomes_a_backend_argument_plain_or_prefixed() -> None:
    plain = {
        "backend": "kubernetes",
        "kubernetes_conn_id": "k8s",
        "namespace": "ais",
        "node_selector": {"role": "ais"},
        "address": "service",
        "scheduling_timeout": "90s",
        "stop_grace": "3",
        "stop_timeout": 5,
        "shared_paths": "/data, /scratch",
        "mount_shared_paths": "false",
        "buckets_file": "/data/buckets.json",
        "gateway_image": "registry.example/gw:1",
        "gateway_port": 9000,
        "gateway_secret_name": "s3-creds",
        "resources": '{"requests": {"cpu": "1"}}',
        "image_pull_secrets": "regcred",
        "tolerations": [{"key": "k", "operator": "Exists"}],
        "pod_labels": "team=data",
        "pod_annotations": {"note": "x"},
        "service_account_name": "etl",
        "priority_class_name": "high",
        "image_pull_policy": "always",
        "volume_claims": '{"/datasets": "data-pvc"}',
        "network_policy": "true",
        "network_policy_namespaces": "team=airflow",
        "network_policy_pods": {"component": "worker"},
    }
    expected = {
        "kubernetes_conn_id": "k8s",
        "namespace": "ais",
        "node_selector": {"role": "ais"},
        "address": "service",
        "scheduling_timeout": 90.0,
        "stop_grace": 3,
        "stop_timeout": 5.0,
        "shared_paths": ("/data", "/scratch"),
        "mount_shared_paths": False,
        "buckets_file": "/data/buckets.json",
        "gateway_image": "registry.example/gw:1",
        "gateway_port": 9000,
        "gateway_secret_name": "s3-creds",
        "resources": {"requests": {"cpu": "1"}},
        "image_pull_secrets": ("regcred",),
        "tolerations": ({"key": "k", "operator": "Exists"},),
        "pod_labels": {"team": "data"},
        "pod_annotations": {"note": "x"},
        "service_account_name": "etl",
        "priority_class_name": "high",
        "image_pull_policy": "Always",
        "volume_claims": {"/datasets": {"claim_name": "data-pvc", "read_only": True}},
        "network_policy": True,
        "network_policy_namespaces": {"team": "airflow"},
        "network_policy_pods": {"component": "worker"},
    }
    assert parse_extras(plain).kubernetes_backend_kwargs() == expected
    prefixed = {FORM_PREFIX + key: value for key, value in plain.items()}
    assert parse_extras(prefixed).kubernetes_backend_kwargs() == expected


def test_blank_and_null_extras_mean_the_defaults() -> None:
    blanks = {f.name: None for f in setting_fields()} | {"home": " ", "shared_paths": [], "node_selector": {}}
    assert parse_extras(blanks) == AisEtlSettings()
    assert parse_extras({"namespace": "", FORM_PREFIX + "namespace": "ais"}).namespace == "ais"


def test_backend_defaults_are_the_connection_defaults() -> None:
    params = inspect.signature(KubernetesBackend).parameters
    defaults = AisEtlSettings().kubernetes_backend_kwargs()
    knobs = {name: defaults.pop(name) for name in PodKnobs.__dataclass_fields__}
    assert PodKnobs.checked(**knobs) == PodKnobs()  # the pod knobs come as **kwargs
    none_means = {
        "kubernetes_conn_id": "kubernetes_default",
        "node_selector": {},
        "volume_claims": {},
        "network_policy_namespaces": {},
        "network_policy_pods": {},
    }
    backend_defaults = {
        name: none_means.get(name)
        if params[name].default is None and name in none_means
        else params[name].default
        for name in defaults
    }
    assert backend_defaults == defaults


@pytest.mark.parametrize(
    ("extras", "error", "message"),
    [
        ({"backend": "docker"}, ValueError, "'backend' must be one of local, kubernetes, got str 'docker'"),
        ({"address": "dns"}, ValueError, "'address' must be one of pod-ip, service"),
        ({"link_template": "https://g/{other}"}, ValueError, "only use the {etl_name} placeholder"),
        ({"node_selector": "novalue"}, ValueError, "key=value pairs"),
        ({"node_selector": "{bad json"}, ValueError, "'node_selector' is not valid JSON"),
        ({"node_selector": ["a"]}, TypeError, "'node_selector' must be an object"),
        ({"home": 3}, TypeError, "'home' must be a string, got int 3"),
        ({"scheduling_timeout": "soon"}, ValueError, "'scheduling_timeout' must be a positive number"),
        ({"stop_timeout": 0}, ValueError, "'stop_timeout' must be a positive number"),
        ({"scheduling_timeout": True}, TypeError, "'scheduling_timeout' must be a positive number"),
        ({"gateway_port": 70000}, ValueError, "'gateway_port' must be a whole number from 1 to 65535"),
        ({"stop_grace": 1.5}, ValueError, "'stop_grace' must be a whole number"),
        ({"mount_shared_paths": "maybe"}, ValueError, "'mount_shared_paths' must be true or false"),
        ({"shared_paths": [1]}, TypeError, "'shared_paths item' must be a path"),
        ({"namespace": "a", FORM_PREFIX + "namespace": "b"}, ValueError, "disagree"),
    ],
)
def test_parse_extras_rejects(extras: dict, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        parse_extras(extras)


def test_unknown_extras_are_rejected_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown ais_etl connection extra") as err:
        parse_extras({"namespce": "ais", "extra__ais_etl__gateway": "x"})
    message = str(err.value)
    assert "'extra__ais_etl__gateway', 'namespce'" in message
    assert all(f.name in message for f in setting_fields())


def test_format_link() -> None:
    assert format_link("https://g/d?var-etl={etl_name}", "my-etl") == "https://g/d?var-etl=my-etl"


def test_missing_default_connection_means_local_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_AIS_ETL_DEFAULT", raising=False)
    monkeypatch.setenv("AIS_ETL_HOME", str(tmp_path / "h"))
    hook = AisEtlHook()
    assert hook.settings == AisEtlSettings()
    ok, message = hook.test_connection()
    assert ok, message
    assert "2 target(s): t1, t2" in message
    assert str(tmp_path / "h") in message


def test_missing_named_connection_is_an_error() -> None:
    with pytest.raises(AirflowNotFoundException):
        _ = AisEtlHook("no_such_conn").settings


def test_connection_extras_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _set_conn(monkeypatch, "my_ais", {"home": str(tmp_path / "home2")})
    hook = AisEtlHook("my_ais")
    assert hook.api.backend.state.home == tmp_path / "home2"
    assert hook.etl_url("etl-one") == (tmp_path / "home2" / "etls" / "etl-one").as_uri()
    _set_conn(monkeypatch, "with_link", {"link_template": "https://g/d?var-etl={etl_name}"})
    assert AisEtlHook("with_link").etl_url("etl-one") == "https://g/d?var-etl=etl-one"


def test_kubernetes_backend_connection_is_tested_through_the_emulator(
    monkeypatch: pytest.MonkeyPatch, kubernetes_conn_env: str
) -> None:
    _set_conn(
        monkeypatch,
        "k8s_ais",
        {
            "backend": "kubernetes",
            "kubernetes_conn_id": kubernetes_conn_env,
            "node_selector": "airflow-ais-etl/target=true",
        },
    )
    ok, message = AisEtlHook("k8s_ais").test_connection()
    assert ok, message
    assert "kubernetes cluster" in message
    assert "2 target(s): node-a, node-b" in message


def test_kubernetes_backend_without_its_kubernetes_connection_fails_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _set_conn(monkeypatch, "k8s_ais", {"backend": "kubernetes", "kubernetes_conn_id": "no_such_k8s_conn"})
    ok, message = AisEtlHook("k8s_ais").test_connection()
    assert not ok
    assert "no_such_k8s_conn" in message


def test_check_health_of_missing_etl_fails(tmp_path: Path) -> None:
    hook = AisEtlHook(settings=AisEtlSettings(home=str(tmp_path)))
    report = hook.check_health("missing-etl")
    assert report.status == HealthVerdict.FAILED
    assert "does not exist" in report.message


def test_async_hook_reads_connection_and_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _set_conn(monkeypatch, "async_ais", {"home": str(tmp_path)})
    hook = AisEtlAsyncHook("async_ais")
    report = asyncio.run(hook.check_health("missing-etl"))
    assert report.status == HealthVerdict.FAILED
    assert asyncio.run(hook.get_settings()).home == str(tmp_path)
    api = asyncio.run(hook.get_api())
    assert api.backend.state.home == tmp_path


def test_assess_verdicts() -> None:
    ok = HealthStatus("t1", "p1", "Running")
    sick = HealthStatus("t2", "p2", "NotReady", "connection refused")
    assert assess("e", EtlState.RUNNING, "", [ok, ok]).status == HealthVerdict.HEALTHY
    report = assess("e", EtlState.RUNNING, "", [ok, sick])
    assert report.status == HealthVerdict.WAITING
    assert "t2/p2: NotReady (connection refused)" in report.message
    assert assess("e", EtlState.STOPPED, "", []).status == HealthVerdict.WAITING
    assert assess("e", EtlState.RUNNING, "", []).status == HealthVerdict.WAITING
    aborted = assess("e", EtlState.ABORTED, "target t2 left", [])
    assert aborted.status == HealthVerdict.FAILED
    assert "target t2 left" in aborted.message
