"""Per-ETL pod options, volume claims and the NetworkPolicy, without a cluster: checks, merging, manifests."""

from __future__ import annotations

import argparse
import logging
from typing import Any

import kubernetes_validate
import pytest

from airflow_ais_etl.cli_podoptions import add_pod_option_flags, pod_options_from_flags
from airflow_ais_etl.cluster.kubernetes.claims import check_volume_claims, claims_of
from airflow_ais_etl.cluster.kubernetes.gateway import GATEWAY_CONTAINER, GatewayConfig, build_pod
from airflow_ais_etl.cluster.kubernetes.netpolicy import NetworkPolicyConfig, network_policy
from airflow_ais_etl.cluster.kubernetes.podknobs import PodKnobs, apply_knobs
from airflow_ais_etl.cluster.local.podoptions import local_pod_meta
from airflow_ais_etl.etl.definition import EtlDefinition
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.md import EtlMD
from airflow_ais_etl.etl.msg import InitCodeMsg
from airflow_ais_etl.etl.podoptions import parse_pod_options
from airflow_ais_etl.etl.podsecurity import violations
from airflow_ais_etl.etl.podspec import Target
from airflow_ais_etl.etl.podtemplate import code_env, code_pod_spec
from airflow_ais_etl.etl.runtimes import RUNTIMES
from airflow_ais_etl.etl.validation import validate
from airflow_ais_etl.hooks.settings import parse_extras

VERSIONS = ("1.30.0", "1.37.0")
CODE = "def transform(b):\n    return b\n"
OPTIONS: dict[str, Any] = {
    "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
    "image_pull_policy": "Always",
    "image_pull_secrets": ["etl-regcred"],
    "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "pod_labels": {"team": "vision", "tier": "gold"},
    "pod_annotations": {"owner": "vision@example.com"},
    "service_account_name": "etl-vision",
    "priority_class_name": "batch-low",
}


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ({"resource": {}}, r"unknown pod_options key\(s\) 'resource'; the known ones are resources, "),
        (
            {"resources": {"requests": {"cpu": "lots"}}},
            r"pod_options.resources: requests.cpu: 'lots' is not a",
        ),
        (
            {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
            "requests.cpu 2 exceeds limits.cpu 1",
        ),
        ({"resources": "1Gi"}, "pod_options.resources: expecting an object with requests and/or limits"),
        ({"pod_labels": {"bad key!": "x"}}, r"pod_options.pod_labels: label key 'bad key!' is not a valid"),
        ({"pod_labels": {"team": "no spaces"}}, "label 'team' has an invalid value 'no spaces'"),
        ({"pod_labels": {"app": "x"}}, "label key 'app' is set by airflow-ais-etl itself"),
        ({"pod_labels": ["team=x"]}, "pod_options.pod_labels: labels must be an object"),
        ({"image_pull_policy": "always"}, "must be one of IfNotPresent, Always, Never, got 'always'"),
        (
            {"image_pull_secrets": "regcred"},
            "pod_options.image_pull_secrets: expecting a list of Secret names",
        ),
        ({"tolerations": [{"key": "a", "effect": "Sometimes"}]}, "toleration 0: effect must be one of"),
        ({"service_account_name": "Not_Valid"}, "service account 'Not_Valid' is not a valid name"),
        ("{not json", "pod_options is not valid JSON"),
        (["resources"], "pod_options must be an object of pod options, got list"),
    ],
)
def test_bad_pod_options_are_refused_with_what_is_wrong(raw: Any, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        EtlDefinition.from_mapping({"code": CODE, "pod_options": raw}, kind="code")


def test_connection_and_etl_share_one_check() -> None:
    with pytest.raises(ValueError, match="connection extra 'resources': requests.cpu: 'lots'"):
        parse_extras({"backend": "kubernetes", "resources": {"requests": {"cpu": "lots"}}})
    with pytest.raises(ValidationError, match="pod_options.resources: requests.cpu: 'lots'"):
        parse_pod_options({"resources": {"requests": {"cpu": "lots"}}})


def test_templated_json_and_dicts_give_the_same_definition() -> None:
    as_dict = EtlDefinition.from_mapping({"code": CODE, "pod_options": OPTIONS}, kind="code")
    import json

    as_text = EtlDefinition.from_mapping({"code": CODE, "pod_options": json.dumps(OPTIONS)}, kind="code")
    assert as_dict.pod_options == as_text.pod_options == OPTIONS


def test_options_are_stored_with_the_etl_and_part_of_its_identity() -> None:
    definition = EtlDefinition.from_mapping({"code": CODE, "pod_options": OPTIONS}, kind="code")
    md = EtlMD()
    md.add(validate(definition.to_msg("opts-etl")), {}, definition.pod_options)
    back = EtlMD.from_json(md.to_json())
    assert back.pod_options_of("opts-etl") == OPTIONS
    md.delete("opts-etl")
    assert md.pod_options_of("opts-etl") == {}
    with pytest.raises(ValidationError, match='invalid ETL metadata entry "x-etl": pod_options.resources'):
        EtlMD.from_json(
            '{"etls": {"x-etl": {"type": "code", "msg": {"name": "x-etl", "code": "eA==", "runtime": '
            '"python3.11v2"}, "pod_options": {"resources": {"requests": {"cpu": "lots"}}}}}}'
        )


def test_etl_options_override_the_connection_key_by_key() -> None:
    connection = PodKnobs.checked(
        resources={"requests": {"cpu": "100m"}},
        pod_labels={"team": "data", "site": "a"},
        tolerations=[{"key": "x", "operator": "Exists"}],
        service_account_name="ais-etl",
    )
    knobs = connection.with_options({"resources": OPTIONS["resources"], "pod_labels": {"team": "vision"}})
    assert knobs.resources == OPTIONS["resources"]
    assert knobs.pod_labels == {"team": "vision", "site": "a"}  # merged, the ETL's value wins
    assert knobs.tolerations == connection.tolerations  # not given: the connection's
    assert knobs.service_account_name == "ais-etl"
    assert connection.with_options(None) is connection


def _pod(knobs: PodKnobs, claims: Any = None) -> dict[str, Any]:
    msg = validate(InitCodeMsg(name="opts-etl", code=CODE, runtime="python3.11v2"))
    assert isinstance(msg, InitCodeMsg)
    config = GatewayConfig(51081, "/data/.airflow-ais-etl/buckets.json", claims=claims_of(claims))
    image = RUNTIMES["python3.11v2"].image
    prep = build_pod(
        config, msg, code_pod_spec(msg), Target("t1", "n1"), env=code_env(msg), image=image, namespace="etl"
    )
    apply_knobs(prep.pod, knobs, GATEWAY_CONTAINER, ours=True)
    return prep.pod


def test_pod_with_etl_options_and_claims_is_valid_and_restricted() -> None:
    claims = {"/data": "datasets-pvc", "/scratch/": {"claim_name": "scratch", "read_only": False}}
    pod = _pod(PodKnobs().with_options(parse_pod_options(OPTIONS)), claims)
    spec = pod["spec"]
    containers = spec["containers"] + spec["initContainers"]
    assert {c["imagePullPolicy"] for c in containers} == {"Always"}
    assert spec["containers"][0]["resources"] == OPTIONS["resources"]
    assert spec["imagePullSecrets"] == [{"name": "etl-regcred"}]
    assert spec["serviceAccountName"] == "etl-vision"
    assert spec["priorityClassName"] == "batch-low"
    assert pod["metadata"]["labels"]["tier"] == "gold"
    volumes = {v["name"]: v for v in spec["volumes"] if "persistentVolumeClaim" in v}
    assert sorted(tuple(v["persistentVolumeClaim"].values()) for v in volumes.values()) == [
        ("datasets-pvc", True),
        ("scratch", False),
    ]
    for c in containers:
        mounts = {m["mountPath"]: m["readOnly"] for m in c["volumeMounts"] if m["name"] in volumes}
        assert mounts == {"/data": True, "/scratch": False}, c["name"]
    assert violations(pod) == []
    for version in VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)


def test_default_pull_policy_is_if_not_present_everywhere() -> None:
    pod = _pod(PodKnobs())
    spec = pod["spec"]
    assert {c["imagePullPolicy"] for c in spec["containers"] + spec["initContainers"]} == {"IfNotPresent"}


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"data": "x"}, "must be an absolute directory"),
        ({"/": "x"}, "must be an absolute directory other than /"),
        ({"/data": "Bad_Name"}, "claim 'Bad_Name' is not a valid name"),
        ({"/data": {"claim_name": "x", "mode": "rw"}}, "unknown key"),
        ({"/data": "a", "/data/sub": "b"}, "may not nest"),
        (["/data"], "expecting an object of directory -> claim name"),
    ],
)
def test_bad_volume_claims_are_refused(claims: Any, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        check_volume_claims(claims)
    with pytest.raises((ValueError, TypeError), match="connection extra 'volume_claims'"):
        parse_extras({"backend": "kubernetes", "volume_claims": claims})


def test_network_policy_selects_the_etl_and_lets_in_workers_and_its_own_pods() -> None:
    config = NetworkPolicyConfig(True, {"kubernetes.io/metadata.name": "airflow"}, {"component": "worker"})
    pod = _pod(PodKnobs())
    policy = network_policy("opts-etl", "etl", pod, config)
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector == {
        "app.kubernetes.io/managed-by": "airflow-ais-etl",
        "app.kubernetes.io/instance": "opts-etl",
    }
    assert all(pod["metadata"]["labels"][k] == v for k, v in selector.items())
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "airflow"}},
            "podSelector": {"matchLabels": {"component": "worker"}},
        },
        {"podSelector": {"matchLabels": selector}},
    ]
    assert policy["metadata"]["labels"]["app.kubernetes.io/component"] == "network-policy"
    for version in VERSIONS:
        kubernetes_validate.validate(policy, version, strict=True)
    only_pods = NetworkPolicyConfig(True, {}, {"component": "worker"}).worker_peer()
    assert only_pods == {
        "namespaceSelector": {"matchLabels": {}},
        "podSelector": {"matchLabels": {"component": "worker"}},
    }


def test_network_policy_without_workers_is_refused() -> None:
    with pytest.raises(ValueError, match="names no workers"):
        parse_extras({"backend": "kubernetes", "network_policy": True})
    with pytest.raises(ValueError, match="label key 'bad key'"):
        parse_extras({"backend": "kubernetes", "network_policy_pods": {"bad key": "x"}})
    assert parse_extras({"backend": "kubernetes", "network_policy": "false"}).network_policy is False


def test_local_backend_reports_ignored_options_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        labels, annotations = local_pod_meta("opts-etl", {"origin": "dag"}, None, parse_pod_options(OPTIONS))
    assert labels == {"team": "vision", "tier": "gold", "origin": "dag"}
    assert annotations == {"owner": "vision@example.com"}
    (record,) = [r for r in caplog.records if "ignored" in r.getMessage()]
    assert record.getMessage() == (
        "etl opts-etl: pod option(s) image_pull_policy, image_pull_secrets, priority_class_name, resources, "
        "service_account_name, tolerations have no meaning on the local backend and are ignored"
    )
    caplog.clear()
    local_pod_meta("opts-etl", None, None, {"pod_labels": {"a": "b"}})
    assert not caplog.records


def test_cli_flags_build_the_options() -> None:
    parser = argparse.ArgumentParser()
    add_pod_option_flags(parser)
    args = parser.parse_args(
        [
            "--pod-options", '{"resources": {"requests": {"cpu": "1"}}, "image_pull_policy": "Never"}',
            "--image-pull-policy", "Always",
            "--label", "team=vision", "--label", "tier=gold",
            "--annotation", "owner=me",
            "--toleration", '{"key": "gpu", "operator": "Exists"}',
            "--image-pull-secret", "regcred",
            "--service-account", "etl-sa",
            "--priority-class", "low",
        ]
    )  # fmt: skip
    options = pod_options_from_flags(args)
    assert parse_pod_options(options) == {
        "resources": {"requests": {"cpu": "1"}},
        "image_pull_policy": "Always",
        "image_pull_secrets": ["regcred"],
        "tolerations": [{"key": "gpu", "operator": "Exists"}],
        "pod_labels": {"team": "vision", "tier": "gold"},
        "pod_annotations": {"owner": "me"},
        "service_account_name": "etl-sa",
        "priority_class_name": "low",
    }
    assert pod_options_from_flags(parser.parse_args([])) is None
    with pytest.raises(ValidationError, match="invalid --label 'team': use KEY=VALUE"):
        pod_options_from_flags(parser.parse_args(["--label", "team"]))
