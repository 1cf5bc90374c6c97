"""Init on the Kubernetes backend when a pod cannot start: the error names it and quotes its events.

End to end through the real ``kubernetes`` client and the provider's hook, in a namespace that
enforces the "restricted" Pod Security Standard. The emulator's scheduler, image pulls and
container restarts produce the same Events and states as a real cluster's.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ais_etl.etl.errors import PodStartError
from tests.kubernetes.conftest import make_bucket

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
    from airflow_ais_etl.service import AisEtl
    from tests.k8s_emulator.emulator import K8sEmulator
    from tests.kubernetes.conftest import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.kubernetes]

RUNTIME = "airflow-ais-etl/runtime-python:3.11v2"


def _spec(image: str = RUNTIME, **container: Any) -> str:
    server = {
        "name": "server",
        "image": image,
        "command": ["python", "-m", "airflow_ais_etl.runtime"],
        "ports": [{"name": "default", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": "default"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        **container,
    }
    pod_context = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    return json.dumps(
        {"apiVersion": "v1", "kind": "Pod", "spec": {"securityContext": pod_context, "containers": [server]}}
    )


def _server_pods(backend: KubernetesBackend, etl: str) -> list[dict[str, Any]]:
    pods, _ = backend.kube.list_pods(f"app.kubernetes.io/instance={etl}")
    return pods


def test_requests_no_node_can_hold_fail_quoting_failed_scheduling(api: AisEtl, cluster: Cluster) -> None:
    spec = _spec(resources={"requests": {"cpu": "64", "memory": "128Mi"}})
    with pytest.raises(PodStartError) as err:
        api.init_spec("huge-etl", spec, timeout="5m")
    text = str(err.value)
    assert "pod is Unschedulable after" in text
    assert f"pod {cluster.namespace}/huge-etl-node-" in text
    assert "last warning events: [FailedScheduling: 0/" in text
    assert "Insufficient cpu" in text
    assert err.value.target.startswith("node-")
    assert api.list() == []


def test_an_absent_image_with_pull_policy_never_fails_at_once(api: AisEtl, cluster: Cluster) -> None:
    image = "registry.example/etl/never-pulled:1.0"
    with pytest.raises(PodStartError) as err:
        api.init_spec("never-etl", _spec(image, imagePullPolicy="Never"), timeout="5m")
    text = str(err.value)
    assert "container 'server' is waiting with reason ErrImageNeverPull" in text
    assert f"target {err.value.target}, pod {cluster.namespace}/never-etl-node-" in text
    assert f'ErrImageNeverPull: Container image "{image}" is not present with pull policy of Never' in text
    assert "Failed: Error: ErrImageNeverPull" in text
    assert api.list() == []


def test_an_image_the_registry_refuses_is_given_up_after_three_pulls(
    api: AisEtl, cluster: Cluster, emulator: K8sEmulator
) -> None:
    image = "registry.example/etl/refused:1.0"
    emulator.fail_image(image)
    with pytest.raises(PodStartError) as err:
        api.init_spec("refused-etl", _spec(image), timeout="5m")
    text = str(err.value)
    tries = re.search(
        r"is waiting with reason (?:ErrImagePull|ImagePullBackOff) after (\d+) failed pull\(s\)", text
    )
    assert tries is not None
    assert int(tries.group(1)) >= 3  # given up at the third failed pull (a slow poll may see a fourth)
    assert f'Failed: Failed to pull image "{image}": rpc error: code = NotFound' in text
    assert "Failed: Error: ImagePullBackOff" in text or "Failed: Error: ErrImagePull" in text
    assert api.list() == []


def test_a_crash_looping_server_fails_quoting_back_off_and_its_log(api: AisEtl) -> None:
    code = "raise ZeroDivisionError('user code is broken')\n\ndef transform(data):\n    return data\n"
    with pytest.raises(PodStartError) as err:
        api.init_code("crash-etl", code, timeout="5m")
    text = str(err.value)
    assert "container 'server' is in CrashLoopBackOff after " in text
    assert "it last exited with code 3 (Error)" in text
    assert "BackOff: Back-off restarting failed container server in pod crash-etl-node-" in text
    assert "last log lines:\n" in text
    assert "ZeroDivisionError: user code is broken" in text
    assert "ZeroDivisionError: user code is broken" in err.value.log_tail
    assert err.value.exit_code == 3
    assert api.list() == []


def test_a_server_that_crashes_once_recovers_and_init_succeeds(
    api: AisEtl, backend: KubernetesBackend, cluster: Cluster, emulator: K8sEmulator, tmp_path: Path
) -> None:
    # POD_IP tells the pods apart; the directory is on this machine, which the emulator's pods share.
    code = (
        "import os, pathlib\n"
        f"_marker = pathlib.Path({str(tmp_path)!r}) / ('crashed-' + os.environ['POD_IP'])\n"
        "if not _marker.exists():\n"
        "    _marker.write_text('once')\n"
        "    raise SystemExit('crashing once on purpose')\n\n"
        "def transform(data):\n    return data.upper()\n"
    )
    api.init_code("phoenix-etl", code, timeout="5m")
    pods = _server_pods(backend, "phoenix-etl")
    assert len(pods) == 2
    for pod in pods:
        (server,) = [s for s in pod["status"]["containerStatuses"] if s["name"] == "server"]
        assert server["restartCount"] == 1
        assert server["lastState"]["terminated"]["exitCode"] == 3  # the runtime: user code failed
        assert "running" in server["state"]
    assert len(list(tmp_path.glob("crashed-*"))) == 2
    assert sorted(h.detail for h in api.health("phoenix-etl")) == ["container server restarted 1 time(s)"] * 2
    make_bucket(cluster.work / "src", ["a.txt"])
    assert api.transform_object("phoenix-etl", str(cluster.work / "src"), "a.txt") == b"OBJECT 0 A.TXT "
