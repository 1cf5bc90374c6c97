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
    "reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError"]
)
def test_image_and_config_errors_fail_fast_with_the_reason(reason: str) -> None:
    problem = start_problem(pod(statuses=[waiting(reason, "boom")]), elapsed=1, scheduling_timeout=60)
    assert problem == f"container 'server' is waiting with reason {reason}: boom"


def test_a_crash_looping_container_reports_how_it_last_ended() -> None:
    last = {"lastState": {"terminated": {"exitCode": 3, "reason": "Error"}}, "restartCount": 2}
    problem = start_problem(
        pod(phase="Running", statuses=[waiting("CrashLoopBackOff", **last)]), elapsed=9, scheduling_timeout=60
    )
    assert problem == "container 'server' exited with code 3 (Error) before the pod became ready"


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
