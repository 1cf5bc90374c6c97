"""The connection's pod knobs: parsed with clear errors, applied to the pods, still valid and restricted."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import kubernetes_validate
import pytest

from airflow_ais_etl.cluster.kubernetes.gateway import GATEWAY_CONTAINER, GatewayConfig, build_pod
from airflow_ais_etl.cluster.kubernetes.podknobs import (
    DEFAULT_RESOURCES,
    SIDECAR_RESOURCES,
    PodKnobs,
    apply_knobs,
)
from airflow_ais_etl.etl.msg import InitCodeMsg
from airflow_ais_etl.etl.podoptions import parse_quantity
from airflow_ais_etl.etl.podsecurity import violations
from airflow_ais_etl.etl.podspec import POD_LABEL_NAME, Target
from airflow_ais_etl.etl.podtemplate import code_env, code_pod_spec
from airflow_ais_etl.etl.runtimes import RUNTIMES
from airflow_ais_etl.etl.validation import validate
from airflow_ais_etl.hooks.settings import AisEtlSettings, parse_extras

KNOBS: dict[str, Any] = {
    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "2Gi", "cpu": 2}},
    "image_pull_secrets": ["regcred", "mirror-creds"],
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "ais", "effect": "NoSchedule"},
        {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
    ],
    "pod_labels": {"team": "data", "example.com/tier": "etl"},
    "pod_annotations": {"prometheus.io/scrape": "true"},
    "service_account_name": "ais-etl",
    "priority_class_name": "high-priority",
}


def _pod(knobs: PodKnobs) -> dict[str, Any]:
    msg = validate(
        InitCodeMsg(name="knob-etl", code="def transform(b):\n    return b\n", runtime="python3.11v2")
    )
    assert isinstance(msg, InitCodeMsg)
    config = GatewayConfig(port=51081, buckets_file="/shared/buckets.json")
    image = RUNTIMES["python3.11v2"].image
    target = Target("t1", "node-1")
    pod = build_pod(
        config, msg, code_pod_spec(msg), target, env=code_env(msg), image=image, namespace="etl"
    ).pod
    apply_knobs(pod, knobs, GATEWAY_CONTAINER)
    return pod


def _sidecar(pod: dict[str, Any]) -> dict[str, Any]:
    (gateway,) = [c for c in pod["spec"]["initContainers"] if c["name"] == GATEWAY_CONTAINER]
    return gateway


def test_defaults_make_pods_burstable_with_no_other_knob() -> None:
    assert AisEtlSettings().resources == DEFAULT_RESOURCES
    assert AisEtlSettings().resources is not AisEtlSettings().resources
    pod = _pod(PodKnobs.checked())
    assert [c["resources"] for c in pod["spec"]["containers"]] == [DEFAULT_RESOURCES]
    assert _sidecar(pod)["resources"] == SIDECAR_RESOURCES
    assert not {"imagePullSecrets", "tolerations", "serviceAccountName", "priorityClassName"} & set(
        pod["spec"]
    )


def test_every_knob_parsed_from_the_connection_reaches_the_pod() -> None:
    settings = parse_extras({"backend": "kubernetes", **KNOBS})
    kwargs = settings.kubernetes_backend_kwargs()
    pod = _pod(PodKnobs.checked(**{k: kwargs[k] for k in KNOBS}))
    spec = pod["spec"]
    limits = {"memory": "2Gi", "cpu": "2"}
    assert spec["containers"][0]["resources"] == {
        "requests": KNOBS["resources"]["requests"],
        "limits": limits,
    }
    assert _sidecar(pod)["resources"] == SIDECAR_RESOURCES
    assert spec["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror-creds"}]
    assert spec["tolerations"] == KNOBS["tolerations"]
    assert spec["serviceAccountName"] == "ais-etl"
    assert spec["priorityClassName"] == "high-priority"
    assert pod["metadata"]["labels"]["team"] == "data"
    assert pod["metadata"]["labels"][POD_LABEL_NAME]
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


def test_text_forms_of_the_legacy_form_parse_too() -> None:
    settings = parse_extras(
        {
            "resources": '{"requests": {"cpu": "1"}}',
            "tolerations": '[{"key": "k", "operator": "Exists"}]',
            "image_pull_secrets": "a\nb,a",
            "pod_labels": "team=data",
            "pod_annotations": '{"note": "x y"}',
        }
    )
    assert settings.resources == {"requests": {"cpu": "1"}}
    assert settings.tolerations == ({"key": "k", "operator": "Exists"},)
    assert settings.image_pull_secrets == ("a", "b")
    assert (settings.pod_labels, settings.pod_annotations) == ({"team": "data"}, {"note": "x y"})


@pytest.mark.parametrize(
    ("extras", "error", "message"),
    [
        (
            {"resources": {"requests": {"cpu": "1x"}}},
            ValueError,
            r"'resources': requests\.cpu: '1x' is not a",
        ),
        (
            {"resources": {"limits": {"memory": "-1Gi"}}},
            ValueError,
            r"limits\.memory: '-1Gi' is not a resource",
        ),
        ({"resources": {"requests": {"memory": "4Gi"}, "limits": {"memory": "2Gi"}}}, ValueError, "exceeds"),
        ({"resources": {"limit": {}}}, ValueError, r"unknown key\(s\) 'limit'"),
        ({"resources": {"requests": "1"}}, ValueError, "requests must be an object"),
        ({"resources": "{bad"}, ValueError, "'resources' is not valid JSON"),
        ({"resources": ["x"]}, TypeError, "'resources' must be a JSON object"),
        ({"tolerations": {"key": "a"}}, TypeError, "'tolerations' must be a JSON array"),
        ({"tolerations": [{"key": "a", "operatr": "Equal"}]}, ValueError, r"unknown key\(s\) 'operatr'"),
        ({"tolerations": [{"key": "a", "operator": "In"}]}, ValueError, "operator must be Equal or Exists"),
        ({"tolerations": [{"key": "a", "operator": "Exists", "value": "v"}]}, ValueError, "Exists takes no"),
        ({"tolerations": [{"value": "v"}]}, ValueError, "empty key needs operator Exists"),
        ({"tolerations": [{"key": "a", "effect": "Never"}]}, ValueError, "effect must be one of"),
        ({"tolerations": [{"key": "a", "tolerationSeconds": 5}]}, ValueError, "needs effect NoExecute"),
        ({"tolerations": ["a"]}, ValueError, "toleration 0 must be an object"),
        ({"pod_labels": {"app": "x"}}, ValueError, "'pod_labels': label key 'app' is set by airflow-ais-etl"),
        ({"pod_labels": {"nvidia.com/ais-etl-name": "x"}}, ValueError, "may not be overridden"),
        ({"pod_labels": {"app.kubernetes.io/instance": "x"}}, ValueError, "may not be overridden"),
        ({"pod_labels": {"team": "has space"}}, ValueError, "invalid value 'has space'"),
        ({"pod_labels": {"bad key!": "x"}}, ValueError, "not a valid"),
        (
            {"pod_annotations": {"airflow-ais-etl/dag-id": "x"}},
            ValueError,
            "'pod_annotations': annotation key",
        ),
        (
            {"image_pull_secrets": ["Bad_Name"]},
            ValueError,
            "image pull secret 'Bad_Name' is not a valid name",
        ),
        ({"image_pull_secrets": {"a": 1}}, TypeError, "must be a list of names"),
        ({"service_account_name": "Not OK"}, ValueError, "'service_account_name': service account 'Not OK'"),
        ({"priority_class_name": "a_b"}, ValueError, "'priority_class_name': priority class 'a_b'"),
    ],
)
def test_invalid_knobs_fail_naming_the_extra(
    extras: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        parse_extras(extras)


def test_the_backend_checks_knobs_given_directly() -> None:
    with pytest.raises(ValueError, match="may not be overridden"):
        PodKnobs.checked(pod_labels={"app": "mine"})
    with pytest.raises(TypeError, match="unknown pod knob"):
        PodKnobs.checked(resource={})


def test_the_etl_pod_spec_wins_over_the_connection() -> None:
    pod: dict[str, Any] = {
        "metadata": {"labels": {"team": "spec"}},
        "spec": {
            "containers": [{"name": "server", "resources": {"requests": {"cpu": "2"}}}],
            "serviceAccountName": "own",
            "imagePullSecrets": [{"name": "regcred"}],
        },
    }
    apply_knobs(pod, PodKnobs.checked(**KNOBS), GATEWAY_CONTAINER)
    assert pod["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "2"}}
    assert pod["spec"]["serviceAccountName"] == "own"
    assert pod["metadata"]["labels"]["team"] == "spec"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror-creds"}]


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
def test_pods_with_every_knob_are_valid_and_restricted(version: str) -> None:
    pod = _pod(PodKnobs.checked(**KNOBS))
    kubernetes_validate.validate(pod, version, strict=True)
    assert violations(pod) == []


@pytest.mark.parametrize(
    ("text", "value"),
    [("100m", "0.1"), ("128Mi", str(128 * 2**20)), ("1.5", "1.5"), ("2e3", "2000"), (".5G", "5E+8")],
)
def test_quantities(text: str, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)
