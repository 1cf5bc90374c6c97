"""Wait for an ETL's pods to become Ready, failing fast (with a diagnosis) when one never will.

The decisions are pure functions of the pod as the API returns it (:func:`start_problem`,
:func:`pod_ready`, :func:`describe_pod`, :func:`failed_container`); :func:`wait_ready` and
:func:`start_error` only poll and gather events and logs around them.

Hopeless at once: an image the node may not pull (``ErrImageNeverPull``), a bad image name or
container config, a failed init container, a container in ``CrashLoopBackOff`` (it crashed again
after its restart) or one that ended for good. Given a chance: a pull that failed fewer than
``pull_tries`` times (registries hiccup), a container that crashed once and is restarting, an
Unschedulable pod until the scheduling timeout.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from airflow_ais_etl.cluster.kubernetes.objects import (
    conditions,
    container_statuses,
    name_of,
    phase_of,
    sidecar_names,
)
from airflow_ais_etl.cluster.kubernetes.podevents import pull_failures, warning_lines
from airflow_ais_etl.etl.constants import DEFAULT_TIMEOUT
from airflow_ais_etl.etl.duration import format_duration, probing_interval
from airflow_ais_etl.etl.errors import PodStartError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_ais_etl.cluster.kubernetes.pods import KubeClient
    from airflow_ais_etl.etl.msg import InitMsg
    from airflow_ais_etl.etl.podspec import PreparedPod, Target

__all__ = [
    "FAIL_FAST_REASONS",
    "PULL_REASONS",
    "describe_pod",
    "failed_container",
    "failed_log_tail",
    "pod_ready",
    "pulling_badly",
    "start_error",
    "start_problem",
    "check_ready",
    "wait_ready",
]

FAIL_FAST_REASONS = frozenset(
    {
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)
"""Waiting reasons that no retry can cure."""
PULL_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff"})
"""Waiting reasons of a failing pull: hopeless once it failed ``pull_tries`` times."""
CRASH_LOOP = "CrashLoopBackOff"
DEFAULT_PULL_TRIES = 3
_EVENTS = 5
_LOG_LINES = 20


def pod_ready(pod: Mapping[str, Any]) -> bool:
    """Tell whether the pod's ``Ready`` condition is ``True``."""
    return str(conditions(pod).get("Ready", {}).get("status")) == "True"


def _restarts_after(pod: Mapping[str, Any], name: str, code: int, sidecars: set[str]) -> bool:
    """Tell whether the kubelet starts container ``name`` again after it exited with ``code``."""
    policy = str((pod.get("spec") or {}).get("restartPolicy") or "Always")
    return name in sidecars or policy == "Always" or (policy == "OnFailure" and code != 0)


def _ended(terminated: Mapping[str, Any]) -> str:
    return f"exited with code {int(terminated.get('exitCode') or 0)} ({terminated.get('reason') or 'Error'})"


def start_problem(
    pod: Mapping[str, Any],
    *,
    elapsed: float,
    scheduling_timeout: float,
    pulls_failed: int | None = None,
    pull_tries: int = DEFAULT_PULL_TRIES,
) -> str | None:
    """Return why a starting pod can never become Ready (fail fast), or None while it still may.

    :param pod: the pod as the API returns it
    :param elapsed: seconds since the pod was created
    :param scheduling_timeout: how long ``Unschedulable`` is tolerated
    :param pulls_failed: failed pulls its events report (None: unknown, then ``ImagePullBackOff``,
        which follows at least one failure, is taken as hopeless)
    :param pull_tries: failed pulls after which a failing pull is hopeless
    """
    status = pod.get("status") or {}
    phase = phase_of(pod)
    if phase.finished:
        message = status.get("message") or status.get("reason") or ""
        return f'pod ran to completion (phase: {phase}), state message: "{message}"'
    sidecars = sidecar_names(pod)
    inits = [(c, True) for c in status.get("initContainerStatuses") or []]
    mains = [(c, False) for c in status.get("containerStatuses") or []]
    for cs, is_init in inits + mains:
        name = str(cs.get("name"))
        kind = "init container" if is_init and name not in sidecars else "container"
        state = cs.get("state") or {}
        waiting = state.get("waiting") or {}
        reason = str(waiting.get("reason") or "")
        detail = f": {waiting['message']}" if waiting.get("message") else ""
        if reason in FAIL_FAST_REASONS:
            return f"{kind} {name!r} is waiting with reason {reason}{detail}"
        if reason in PULL_REASONS:
            tried = pulls_failed if pulls_failed is not None else 0
            hopeless = tried >= pull_tries if pulls_failed is not None else reason == "ImagePullBackOff"
            if hopeless:
                times = f" after {tried} failed pull(s)" if pulls_failed is not None else ""
                return f"{kind} {name!r} is waiting with reason {reason}{times}{detail}"
            continue
        last = (cs.get("lastState") or {}).get("terminated") or {}
        if reason == CRASH_LOOP:
            restarts = int(cs.get("restartCount") or 0)
            ended = f"; it last {_ended(last)}" if last else ""
            return f"{kind} {name!r} is in {CRASH_LOOP} after {restarts} restart(s){ended}"
        terminated = state.get("terminated") or {}
        if not terminated:
            continue
        code = int(terminated.get("exitCode") or 0)
        if kind == "init container":
            if code != 0:  # installs dependencies: deterministic, a retry would fail alike
                return f"{kind} {name!r} failed with exit code {code} ({terminated.get('reason') or 'Error'})"
            continue
        if not _restarts_after(pod, name, code, sidecars):
            return f"{kind} {name!r} {_ended(terminated)} before the pod became ready"
    scheduled = conditions(pod).get("PodScheduled", {})
    if str(scheduled.get("status")) == "False" and scheduled.get("reason") == "Unschedulable":
        if elapsed > scheduling_timeout:
            return (
                f"pod is Unschedulable after {format_duration(elapsed)} (scheduling timeout "
                f"{format_duration(scheduling_timeout)}): {scheduled.get('message') or 'no node fits'}"
            )
    return None


def pulling_badly(pod: Mapping[str, Any]) -> bool:
    """Tell whether a container of the pod waits on a failing image pull (its events tell how often)."""
    for cs in container_statuses(pod):
        if str(((cs.get("state") or {}).get("waiting") or {}).get("reason") or "") in PULL_REASONS:
            return True
    return False


def describe_pod(pod: Mapping[str, Any]) -> str:
    """Render phase, conditions and each container's state in one line (for errors and health)."""
    status = pod.get("status") or {}
    conds = []
    for c in status.get("conditions") or []:
        text = f'{{type: "{c.get("type")}", status: "{c.get("status")}"'
        if c.get("reason"):
            text += f', reason: "{c["reason"]}"'
        if c.get("message"):
            text += f', msg: "{c["message"]}"'
        conds.append(text + "}")
    states = []
    for cs in container_statuses(pod):
        state = cs.get("state") or {}
        kind = next(iter(state), "unknown")
        inner = state.get(kind) or {}
        extra = inner.get("reason") or ""
        if kind == "terminated":
            extra = f"exit code {inner.get('exitCode')}" + (f", {extra}" if extra else "")
        restarts = int(cs.get("restartCount") or 0)
        text = f"{cs.get('name')}: {kind}" + (f" ({extra})" if extra else "")
        states.append(text + (f", {restarts} restart(s)" if restarts else ""))
    return (
        f'phase "{status.get("phase") or ""}", conditions [{", ".join(conds)}], '
        f"containers [{'; '.join(states) or 'none started'}]"
    )


def failed_container(pod: Mapping[str, Any]) -> tuple[str, bool, int] | None:
    """Return the first container that failed (name, whether its log is the previous run's, exit code).

    An init container that exited 0 did its job; a sidecar or main container that exited at all
    during startup failed.
    """
    sidecars = sidecar_names(pod)
    for cs in container_statuses(pod):
        state = cs.get("state") or {}
        term = state.get("terminated") or (cs.get("lastState") or {}).get("terminated")
        if not term:
            continue
        code = int(term.get("exitCode") or 0)
        if code == 0 and cs.get("name") not in sidecars:
            continue
        return str(cs.get("name")), not state.get("terminated"), code
    return None


def failed_log_tail(kube: KubeClient, pod: Mapping[str, Any]) -> tuple[str, int | None]:
    """Return the log tail and exit code of the first container that failed, if any."""
    failed = failed_container(pod)
    if failed is None:
        return "", None
    container, previous, code = failed
    text = ""
    for prev in (previous, False) if previous else (False,):
        with contextlib.suppress(Exception):
            text = kube.pod_log(name_of(pod), container, tail_lines=_LOG_LINES, previous=prev)
        if text.strip():
            break
    return text.rstrip("\n"), code


def start_error(
    kube: KubeClient, msg: InitMsg, target: Target, pod: Mapping[str, Any], problem: str
) -> PodStartError:
    """Return the error of a pod that will not start: ``problem`` plus its state, events and log tail."""
    name = name_of(pod)
    events = ["(events unreadable)"]
    with contextlib.suppress(Exception):
        events = warning_lines(kube.pod_events(name), _EVENTS) or ["none"]
    tail, code = failed_log_tail(kube, pod)
    text = (
        f"{problem}; target {target.id}, pod {kube.namespace}/{name}: {describe_pod(pod)}; "
        f"last warning events: [{' | '.join(events)}]"
    )
    if tail:
        text += f"; last log lines:\n{tail}"
    return PodStartError(
        text,
        exit_code=code,
        log_tail=tail,
        etl_name=msg.name,
        target=target.id,
        pod_name=name,
        svc_name=name,
    )


def wait_ready(
    kube: KubeClient,
    msg: InitMsg,
    prepared: list[tuple[Target, PreparedPod]],
    *,
    scheduling_timeout: float,
    poll_interval: float | None = None,
    pull_tries: int = DEFAULT_PULL_TRIES,
) -> None:
    """Poll the created pods until every one is Ready; raise :class:`PodStartError` when one will not be.

    :param poll_interval: seconds between polls (default: the reference's ``probing_interval``)
    :param pull_tries: failed pulls of an image after which the pod is given up
    """
    interval = poll_interval or probing_interval(msg.timeout or DEFAULT_TIMEOUT)
    start = time.monotonic()
    pods = [(target, prep.pod_name) for target, prep in prepared]
    while True:
        time.sleep(interval)
        elapsed = time.monotonic() - start
        if check_ready(
            kube, msg, pods, elapsed=elapsed, scheduling_timeout=scheduling_timeout, pull_tries=pull_tries
        ):
            return


def check_ready(
    kube: KubeClient,
    msg: InitMsg,
    pods: Sequence[tuple[Target, str | None]],
    *,
    elapsed: float,
    scheduling_timeout: float,
    pull_tries: int = DEFAULT_PULL_TRIES,
) -> bool:
    """One poll of the startup wait, ``elapsed`` seconds after the pods were created: are all Ready?

    ``pods`` pairs each target with its pod's name (``None``: no pod found for it). Raises
    :class:`PodStartError` (state, warning events, log tail) when one never will be, or is not Ready
    once the ETL's timeout has passed. The blocking :func:`wait_ready` and a trigger waiting in
    Airflow's triggerer both call it.
    """
    timeout = msg.timeout or DEFAULT_TIMEOUT
    waiting: tuple[Target, Mapping[str, Any]] | None = None
    for target, pod_name in pods:
        pod = kube.read_pod(pod_name) if pod_name else None
        if pod is None:
            raise PodStartError(
                f"pod {kube.namespace}/{pod_name or '(none)'} disappeared while starting (deleted or evicted)",
                etl_name=msg.name,
                target=target.id,
                pod_name=pod_name or "",
            )
        problem = start_problem(
            pod,
            elapsed=elapsed,
            scheduling_timeout=scheduling_timeout,
            pulls_failed=_pulls_failed(kube, pod) if pulling_badly(pod) else None,
            pull_tries=pull_tries,
        )
        if problem:
            raise start_error(kube, msg, target, pod, problem)
        if not pod_ready(pod) and waiting is None:
            waiting = (target, pod)
    if waiting is not None and elapsed > timeout:
        reason = f"pod did not become ready within the startup timeout of {format_duration(timeout)}"
        raise start_error(kube, msg, *waiting, reason)
    return waiting is None


def _pulls_failed(kube: KubeClient, pod: Mapping[str, Any]) -> int | None:
    """Count the pod's failed pulls from its events (None when they cannot be read, e.g. no RBAC)."""
    try:
        return pull_failures(kube.pod_events(name_of(pod)))
    except Exception:
        return None
