"""The status a kubelet reports for one pod: phase, conditions, IPs and container statuses.

Pure reporting: :class:`StatusReporter` reads what the pod worker knows (:class:`PodFacts`) and
remembers only when each condition last changed (``lastTransitionTime``).
"""

from __future__ import annotations

import time
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from tests.k8s_emulator.objects import rfc3339

if TYPE_CHECKING:
    from tests.k8s_emulator.containers import ContainerState

__all__ = ["NODE_IP", "Placement", "PodFacts", "PodPhase", "StatusReporter", "pod_phase", "qos_class"]

NODE_IP = "127.0.0.1"


class PodPhase(str, Enum):
    """``status.phase`` of a pod."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    def __str__(self) -> str:
        return self.value


class Placement(str, Enum):
    """Where scheduling got: not tried yet, no node fits (yet), or bound to a node."""

    PENDING = "Pending"
    UNSCHEDULABLE = "Unschedulable"
    BOUND = "Bound"

    def __str__(self) -> str:
        return self.value


class PodFacts(Protocol):
    """What the reporter reads of a pod worker."""

    pod: dict[str, Any]
    placement: Placement
    schedule_message: str
    initialized: bool
    init_failed: bool
    inits: list[ContainerState]
    mains: list[ContainerState]
    ip: str
    started_time: float

    @property
    def started(self) -> bool:
        """Whether the pod's processes were started."""


def pod_phase(pod: PodFacts) -> PodPhase:
    """Return the phase: Failed init, Pending until started, then Running until every container ended."""
    if pod.init_failed:
        return PodPhase.FAILED
    if not pod.started:
        return PodPhase.PENDING
    ended = [c.exit_code for c in pod.mains if c.exit_code is not None and c.next_restart is None]
    if len(ended) == len(pod.mains):
        return PodPhase.SUCCEEDED if all(code == 0 for code in ended) else PodPhase.FAILED
    return PodPhase.RUNNING


def qos_class(spec: dict[str, Any]) -> str:
    """Return the pod's QoS class as the API server derives it from CPU and memory requests/limits."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    guaranteed, any_set = True, False
    for c in containers:
        resources = c.get("resources") or {}
        limits = resources.get("limits") or {}
        requests = {**limits, **(resources.get("requests") or {})}  # requests default to limits
        for name in ("cpu", "memory"):
            any_set = any_set or name in requests or name in limits
            if name not in limits or str(requests.get(name)) != str(limits[name]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class StatusReporter:
    """Build the ``status`` of one pod, remembering when each condition last changed."""

    def __init__(self) -> None:
        self._transitions: dict[str, tuple[str, str]] = {}

    def status(self, pod: PodFacts, *, node_ready: bool) -> dict[str, Any]:
        """Return the pod status the kubelet reports now."""
        status: dict[str, Any] = {
            "phase": pod_phase(pod).value,
            "qosClass": qos_class(pod.pod.get("spec") or {}),
        }
        if pod.placement is Placement.UNSCHEDULABLE:
            reason = Placement.UNSCHEDULABLE.value
            status["conditions"] = [self._condition("PodScheduled", "False", reason, pod.schedule_message)]
            return status
        if pod.placement is Placement.PENDING:
            return status
        status["conditions"] = self._conditions(pod, node_ready)
        status["hostIP"] = NODE_IP
        status["hostIPs"] = [{"ip": NODE_IP}]
        status["podIP"] = pod.ip
        status["podIPs"] = [{"ip": pod.ip}]
        status["startTime"] = rfc3339(pod.started_time)
        if pod.inits:
            status["initContainerStatuses"] = [c.status() for c in pod.inits]
        status["containerStatuses"] = [c.status() for c in pod.mains]
        return status

    def _conditions(self, pod: PodFacts, node_ready: bool) -> list[dict[str, Any]]:
        """Return the conditions of a bound pod, in the order the kubelet lists them."""
        conditions = [self._condition("PodReadyToStartContainers", "True"), self._initialized(pod)]
        not_ready = [c.name for c in pod.mains if not c.ready]
        if not_ready:
            msg = f"containers with unready status: [{' '.join(not_ready)}]"
            conditions.append(self._condition("Ready", "False", "ContainersNotReady", msg))
            conditions.append(self._condition("ContainersReady", "False", "ContainersNotReady", msg))
        elif not node_ready:
            conditions.append(self._condition("Ready", "False", "NodeNotReady", "node is not ready"))
            conditions.append(self._condition("ContainersReady", "True"))
        else:
            conditions.append(self._condition("Ready", "True"))
            conditions.append(self._condition("ContainersReady", "True"))
        conditions.append(self._condition("PodScheduled", "True"))
        return conditions

    def _initialized(self, pod: PodFacts) -> dict[str, Any]:
        if pod.initialized:
            return self._condition("Initialized", "True")
        unfinished = [c.name for c in pod.inits if c.exit_code != 0]
        message = f"containers with incomplete status: [{' '.join(unfinished)}]"
        return self._condition("Initialized", "False", "ContainersNotInitialized", message)

    def _condition(self, kind: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
        previous = self._transitions.get(kind)
        if previous is None or previous[0] != status:
            self._transitions[kind] = (status, rfc3339(time.time()))
        out: dict[str, Any] = {
            "type": kind,
            "status": status,
            "lastProbeTime": None,
            "lastTransitionTime": self._transitions[kind][1],
        }
        if reason:
            out["reason"] = reason
        if message:
            out["message"] = message
        return out
