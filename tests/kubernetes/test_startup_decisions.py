"""The pure fail-fast decision of the Kubernetes backend's readiness wait, case by case."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_ais_etl.cluster.kubernetes.startup import start_problem


def pod(
    *, phase: str = "Pending", statuses: list[dict[str, Any]] | None = None, **status: Any
) -> dict[str, Any]:
    return {"status": {"phase": phase, "containerStatuses": statuses or [], **status}}


def waiting(reason: str, message: str = "", **extra: Any) -> dict[str, Any]:
    return {"name": "server", "state": {"waiting": {"reason": reason, "message": message}}, **extra}


@pytest.mark.parametrize(
    "reason", ["ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError", "RunContainerError"]
)
def test_errors_no_retry_cures_fail_at_once_with_the_reason(reason: str) -> None:
    problem = start_problem(pod(statuses=[waiting(reason, "boom")]), elapsed=1, scheduling_timeout=60)
    assert problem == f"container 'server' is waiting with reason {reason}: boom"


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff"])
def test_a_failing_pull_is_given_up_after_the_tries(reason: str) -> None:
    failing = pod(statuses=[waiting(reason, "not found")])
    for tried in (0, 1, 2):
        assert start_problem(failing, elapsed=1, scheduling_timeout=60, pulls_failed=tried) is None
    problem = start_problem(failing, elapsed=1, scheduling_timeout=60, pulls_failed=3)
    assert problem == f"container 'server' is waiting with reason {reason} after 3 failed pull(s): not found"
    assert start_problem(failing, elapsed=1, scheduling_timeout=60, pulls_failed=1, pull_tries=1)


def test_without_events_a_pull_is_given_up_at_its_back_off() -> None:
    first = pod(statuses=[waiting("ErrImagePull", "not found")])
    assert start_problem(first, elapsed=1, scheduling_timeout=60) is None
    backoff = pod(statuses=[waiting("ImagePullBackOff", 'Back-off pulling image "x"')])
    assert start_problem(backoff, elapsed=1, scheduling_timeout=60) == (
        "container 'server' is waiting with reason ImagePullBackOff: Back-off pulling image \"x\""
    )


def test_a_crash_looping_container_reports_how_it_last_ended() -> None:
    last: dict[str, Any] = {
        "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}},
        "restartCount": 2,
    }
    problem = start_problem(
        pod(phase="Running", statuses=[waiting("CrashLoopBackOff", **last)]), elapsed=9, scheduling_timeout=60
    )
    assert (
        problem
        == "container 'server' is in CrashLoopBackOff after 2 restart(s); it last exited with code 3 (Error)"
    )


def test_a_container_that_crashed_once_is_given_its_restart() -> None:
    ended = {"name": "server", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
    crashed = pod(phase="Running", statuses=[ended])
    crashed["spec"] = {"restartPolicy": "Always"}
    assert start_problem(crashed, elapsed=2, scheduling_timeout=60) is None
    last: dict[str, Any] = {"lastState": {"terminated": {"exitCode": 1}}, "restartCount": 1}
    back = pod(phase="Running", statuses=[{"name": "server", "state": {"running": {}}, **last}])
    assert start_problem(back, elapsed=3, scheduling_timeout=60) is None


@pytest.mark.parametrize(("policy", "code"), [("Never", 1), ("Never", 0), ("OnFailure", 0)])
def test_a_container_that_will_not_restart_fails_at_once(policy: str, code: int) -> None:
    ended = {"name": "server", "state": {"terminated": {"exitCode": code, "reason": "Completed"}}}
    sidecar = {"name": "gateway", "state": {"running": {}}}
    crashed = pod(phase="Running", statuses=[sidecar, ended])
    crashed["spec"] = {"restartPolicy": policy}
    problem = start_problem(crashed, elapsed=2, scheduling_timeout=60)
    assert problem == f"container 'server' exited with code {code} (Completed) before the pod became ready"
    crashed["spec"]["restartPolicy"] = "Always"
    assert start_problem(crashed, elapsed=2, scheduling_timeout=60) is None


def test_a_failed_init_container_and_a_finished_pod_fail_fast() -> None:
    init = {"name": "server-deps", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
    problem = start_problem(pod(initContainerStatuses=[init]), elapsed=1, scheduling_timeout=60)
    assert problem == "init container 'server-deps' failed with exit code 1 (Error)"
    done = start_problem(pod(phase="Failed", message="evicted"), elapsed=1, scheduling_timeout=60)
    assert done == 'pod ran to completion (phase: Failed), state message: "evicted"'


def test_unschedulable_fails_only_after_the_scheduling_timeout() -> None:
    unschedulable = pod(
        conditions=[
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes"}
        ]
    )
    assert start_problem(unschedulable, elapsed=10, scheduling_timeout=60) is None
    late = start_problem(unschedulable, elapsed=61, scheduling_timeout=60)
    assert late is not None
    assert late.startswith("pod is Unschedulable after 1m1s (scheduling timeout 1m): 0/2 nodes")


def test_a_pod_that_is_still_starting_is_left_alone() -> None:
    assert (
        start_problem(pod(statuses=[waiting("ContainerCreating")]), elapsed=5, scheduling_timeout=60) is None
    )
    running = {"name": "server", "state": {"running": {}}, "ready": False}
    assert start_problem(pod(phase="Running", statuses=[running]), elapsed=5, scheduling_timeout=60) is None


def test_health_of_a_crash_looping_pod_names_restarts_and_last_exit() -> None:
    from airflow_ais_etl.cluster.base import PodStatus
    from airflow_ais_etl.cluster.kubernetes.health import status_health

    last: dict[str, Any] = {
        "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}},
        "restartCount": 4,
    }
    looping = pod(phase="Running", statuses=[waiting("CrashLoopBackOff", "back-off 40s", **last)])
    looping["metadata"] = {"name": "etl-node-a", "labels": {}}
    health = status_health(looping)
    assert health.status is PodStatus.FAILED
    assert (
        health.detail
        == "container server is waiting: CrashLoopBackOff, restarted 4 time(s), last exit code 3"
    )
    ended = pod(phase="Running", statuses=[{"name": "server", "state": {"terminated": {"exitCode": 137}}}])
    ended["metadata"] = {"name": "etl-node-a", "labels": {}}
    assert status_health(ended).detail == "container server exited with code 137"
