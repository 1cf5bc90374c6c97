"""Pod Security Standards: the checker's verdicts and wording, and every pod we generate complies."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from airflow_ais_etl.etl.constants import COMM_TYPES
from airflow_ais_etl.etl.msg import InitCodeMsg, InitSpecMsg
from airflow_ais_etl.etl.podcheck import parse_pod_spec
from airflow_ais_etl.etl.podsecurity import (
    BASELINE,
    PRIVILEGED,
    added_container_context,
    forbidden_message,
    violations,
)
from airflow_ais_etl.etl.podspec import Target, prepare_pod
from airflow_ais_etl.etl.podtemplate import code_env, code_pod_spec
from airflow_ais_etl.etl.runtimes import RUNTIME_UID, RUNTIMES
from airflow_ais_etl.etl.validation import validate

HARDENED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
POD_CONTEXT = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def pod(*containers: dict[str, Any], init: tuple[dict[str, Any], ...] = (), **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"containers": list(containers), **spec}
    if init:
        body["initContainers"] = list(init)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": body}


def c(name: str = "c", **security: Any) -> dict[str, Any]:
    return {"name": name, "image": "img", "securityContext": {**HARDENED, **security}}


def bare(name: str = "c") -> dict[str, Any]:
    return {"name": name, "image": "img"}


def compliant() -> dict[str, Any]:
    return pod(c(), init=(c("i"),), securityContext=POD_CONTEXT, volumes=[{"name": "v", "emptyDir": {}}])


# -- compliant vectors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        compliant(),
        # Everything at container level instead of pod level.
        pod(c(runAsNonRoot=True, seccompProfile={"type": "Localhost", "localhostProfile": "p.json"})),
        pod(c(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}), securityContext=POD_CONTEXT),
        pod(c(runAsUser=1000), securityContext={**POD_CONTEXT, "runAsUser": 2000}),
        # The container may override a pod-level Unconfined/false... only with an allowed value.
        pod(
            c(runAsNonRoot=True, seccompProfile={"type": "RuntimeDefault"}),
            securityContext={"seccompProfile": {"type": "RuntimeDefault"}},
        ),
        pod(
            c(),
            securityContext=POD_CONTEXT,
            volumes=[
                {"name": n, kind: {}}
                for n, kind in [("a", "configMap"), ("b", "secret"), ("d", "projected"), ("e", "csi")]
            ]
            + [{"name": "f", "persistentVolumeClaim": {"claimName": "x"}}],
        ),
    ],
)
def test_compliant_pods_pass(spec: dict[str, Any]) -> None:
    assert violations(spec) == []
    assert violations(spec, BASELINE) == []


def test_a_bare_pod_spec_is_accepted_too() -> None:
    assert violations(compliant()["spec"]) == []


# -- non-compliant vectors: the API server's wording -------------------------------------------------


def test_a_bare_pod_gets_the_four_classic_restricted_violations() -> None:
    assert violations(pod(bare("nginx"))) == [
        (
            'allowPrivilegeEscalation != false (container "nginx" must set '
            "securityContext.allowPrivilegeEscalation=false)"
        ),
        'unrestricted capabilities (container "nginx" must set securityContext.capabilities.drop=["ALL"])',
        'runAsNonRoot != true (pod or container "nginx" must set securityContext.runAsNonRoot=true)',
        (
            'seccompProfile (pod or container "nginx" must set securityContext.seccompProfile.type to '
            '"RuntimeDefault" or "Localhost")'
        ),
    ]
    assert violations(pod(bare("nginx")), BASELINE) == []
    assert violations(pod(bare("nginx")), PRIVILEGED) == []


def test_several_containers_are_listed_together_init_containers_first() -> None:
    found = violations(pod(bare("b"), init=(bare("a"),)))
    assert found[0] == (
        'allowPrivilegeEscalation != false (containers "a", "b" must set '
        "securityContext.allowPrivilegeEscalation=false)"
    )
    assert (
        found[2]
        == 'runAsNonRoot != true (pod or containers "a", "b" must set securityContext.runAsNonRoot=true)'
    )


def test_ephemeral_containers_are_checked() -> None:
    spec = compliant()
    spec["spec"]["ephemeralContainers"] = [bare("debug")]
    assert [v.split(" (")[0] for v in violations(spec)] == [
        "allowPrivilegeEscalation != false",
        "unrestricted capabilities",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"hostNetwork": True, "hostPID": True, "hostIPC": True},
            "host namespaces (hostNetwork=true, hostPID=true, hostIPC=true)",
        ),
        (
            {"volumes": [{"name": "data", "hostPath": {"path": "/data"}}]},
            'restricted volume types (volume "data" uses restricted volume type "hostPath")',
        ),
        (
            {"volumes": [{"name": "a", "hostPath": {"path": "/a"}}, {"name": "b", "nfs": {"server": "s"}}]},
            'restricted volume types (volumes "a", "b" use restricted volume types "hostPath", "nfs")',
        ),
        (
            {"securityContext": {**POD_CONTEXT, "runAsUser": 0}},
            "runAsUser=0 (pod must not set runAsUser=0)",
        ),
        (
            {"securityContext": {**POD_CONTEXT, "runAsNonRoot": False}},
            (
                'runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false; pod or containers "i", '
                '"c" must set securityContext.runAsNonRoot=true)'
            ),
        ),
        (
            {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "Unconfined"}}},
            (
                'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined"; pod or '
                'containers "i", "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
            ),
        ),
    ],
)
def test_pod_level_violations(change: dict[str, Any], expected: str) -> None:
    spec = compliant()
    spec["spec"].update(change)
    assert violations(spec) == [expected]


@pytest.mark.parametrize(
    ("security", "expected"),
    [
        ({"privileged": True}, 'privileged (container "c" must not set securityContext.privileged=true)'),
        (
            {"allowPrivilegeEscalation": True},
            'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false)',
        ),
        (
            {"capabilities": {"drop": ["NET_RAW"]}},
            'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"])',
        ),
        (
            {"capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN", "NET_BIND_SERVICE"]}},
            (
                'unrestricted capabilities (container "c" must not include "SYS_ADMIN" in '
                "securityContext.capabilities.add)"
            ),
        ),
        ({"runAsUser": 0}, 'runAsUser=0 (container "c" must not set runAsUser=0)'),
        (
            {"runAsNonRoot": False},
            'runAsNonRoot != true (container "c" must not set securityContext.runAsNonRoot=false)',
        ),
        (
            {"seccompProfile": {"type": "Unconfined"}},
            'seccompProfile (container "c" must not set securityContext.seccompProfile.type to "Unconfined")',
        ),
    ],
)
def test_container_level_violations(security: dict[str, Any], expected: str) -> None:
    assert violations(pod(c(**security), securityContext=POD_CONTEXT)) == [expected]


def test_host_ports() -> None:
    container = c()
    container["ports"] = [{"containerPort": 80, "hostPort": 80}, {"containerPort": 443, "hostPort": 443}]
    assert violations(pod(container, securityContext=POD_CONTEXT)) == [
        'hostPort (container "c" uses hostPorts 80, 443)'
    ]


def test_baseline_checks_only_the_dangerous_things() -> None:
    container = bare()
    container["securityContext"] = {"privileged": True, "capabilities": {"add": ["SYS_ADMIN", "CHOWN"]}}
    spec = pod(container, hostPID=True, volumes=[{"name": "h", "hostPath": {"path": "/"}}])
    assert violations(spec, BASELINE) == [
        'non-default capabilities (container "c" must not include "SYS_ADMIN" in securityContext.capabilities.add)',
        "host namespaces (hostPID=true)",
        'hostPath volumes (volume "h")',
        'privileged (container "c" must not set securityContext.privileged=true)',
    ]


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown Pod Security level"):
        violations(compliant(), "strict")


def test_forbidden_message_is_the_api_servers() -> None:
    found = violations(pod(bare("nginx"), securityContext=POD_CONTEXT))
    assert forbidden_message("web", found) == (
        'pods "web" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
        '(container "nginx" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities '
        '(container "nginx" must set securityContext.capabilities.drop=["ALL"])'
    )
    assert 'PodSecurity "baseline:v1.30"' in forbidden_message("web", ["x"], BASELINE, "v1.30")


# -- generated pods comply ---------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
@pytest.mark.parametrize("comm", COMM_TYPES)
def test_every_init_code_pod_is_restricted(runtime: str, comm: str) -> None:
    msg = validate(
        InitCodeMsg(name="md5-etl", code="def transform(b):\n    return b\n", runtime=runtime, comm_type=comm)
    )
    assert isinstance(msg, InitCodeMsg)
    prepared = prepare_pod(
        code_pod_spec(msg), msg, Target("t1", "node-1"), target_url="http://x", extra_env=code_env(msg)
    )
    assert violations(prepared.pod) == []
    assert prepared.pod["spec"]["securityContext"]["runAsUser"] == RUNTIME_UID


USER_SPEC = """\
apiVersion: v1
kind: Pod
metadata: {name: echo}
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 2000
    seccompProfile: {type: Localhost, localhostProfile: profiles/etl.json}
  containers:
    - name: server
      image: aistorage/transformer_echo:latest
      command: ["python", "/server.py"]
      ports: [{name: default, containerPort: 80}]
      readinessProbe: {httpGet: {path: /health, port: default}}
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
"""


def test_a_compliant_user_spec_keeps_its_choices_and_complies_with_an_added_container() -> None:
    msg = validate(InitSpecMsg(name="echo-etl", spec=USER_SPEC, comm_type="hpush://"))
    assert isinstance(msg, InitSpecMsg)
    prepared = prepare_pod(parse_pod_spec(msg.spec), msg, Target("t1", "node-1"), target_url="http://x")
    spec = prepared.pod["spec"]
    before = copy.deepcopy(spec)
    assert violations(prepared.pod) == []
    sidecar = {"name": "sidecar", "image": "img", "securityContext": added_container_context(spec)}
    spec["initContainers"] = [sidecar]
    assert violations(prepared.pod) == []
    # The pod's own uid and Localhost profile hold for the added container too.
    assert sidecar["securityContext"] == {**HARDENED, "runAsNonRoot": True}
    assert spec["securityContext"] == before["securityContext"]


def test_the_added_container_is_restricted_in_a_pod_that_sets_nothing() -> None:
    context = added_container_context({})
    assert context == {
        **HARDENED,
        "runAsNonRoot": True,
        "runAsUser": RUNTIME_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert violations(pod({"name": "gw", "image": "img", "securityContext": context})) == []
    # A root pod: our container still runs as non-root.
    assert added_container_context({"securityContext": {"runAsUser": 0}})["runAsUser"] == RUNTIME_UID
