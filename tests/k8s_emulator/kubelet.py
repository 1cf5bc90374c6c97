"""The process kubelet: schedule pods onto nodes and run them as local processes.

Each pod gets one worker thread that lives as long as the pod's processes (the pod runner's
``die_with_parent`` ties the processes to the thread that started them). The worker schedules the
pod, gives it a loopback IP, starts it with the project's pod runner, watches exits, restarts
containers with back-off, runs readiness probes, and tears the pod down on deletion.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os
import re
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psutil

from airflow_ais_etl.cluster.local.podrunner import (
    free_loopback_ip,
    probe_http,
    readiness_url,
    start_pod,
    stop_pod,
)
from airflow_ais_etl.etl.errors import PodStartError, ValidationError
from tests.k8s_emulator.logbuffer import LogBuffer, file_size
from tests.k8s_emulator.objects import ApiError, bad_request, node_is_ready, not_found, rfc3339

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_ais_etl.cluster.local.podrunner import ContainerProcess, LocalPod
    from tests.k8s_emulator.events import EventRecorder
    from tests.k8s_emulator.store import Store

log = logging.getLogger(__name__)

MARK_ENV = "K8S_EMULATOR_MARK"
NODE_IP = "127.0.0.1"
_TICK = 0.1

try:
    from airflow_ais_etl.etl.runtimes import RUNTIME_SERVER_COMMAND, is_runtime_image
except ImportError:  # pragma: no cover - the runtimes module is part of the project
    RUNTIME_SERVER_COMMAND = ["python", "-m", "airflow_ais_etl.runtime"]

    def is_runtime_image(image: str) -> bool:
        return image.startswith("airflow-ais-etl/runtime-python:")


def image_command(image: str) -> list[str] | None:
    """Return the local program of an image that has no ``command`` (only the runtime images)."""
    return list(RUNTIME_SERVER_COMMAND) if is_runtime_image(image) else None


def exit_status(code: int) -> int:
    """Map the pod runner's exit code (negative = signal) to the container's (128 + signal)."""
    return 128 - code if code < 0 else code


@dataclass
class ContainerState:
    """What the kubelet knows about one container."""

    spec: dict[str, Any]
    init: bool = False
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    restart_count: int = 0
    ready: bool = False
    proc: ContainerProcess | None = None
    logs: LogBuffer | None = None
    prev_logs: LogBuffer | None = None
    container_id: str = ""
    started_at: float = 0.0
    next_restart: float | None = None
    next_probe: float = 0.0
    successes: int = 0
    failures: int = 0

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    @property
    def image(self) -> str:
        return str(self.spec.get("image", ""))

    def status(self) -> dict[str, Any]:
        image = self.image
        digest = hashlib.sha256(image.encode()).hexdigest()
        out: dict[str, Any] = {
            "name": self.name,
            "image": image,
            "imageID": f"{image.split(':')[0]}@sha256:{digest}" if self.container_id else "",
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": "running" in self.state,
            "state": copy.deepcopy(self.state),
            "lastState": copy.deepcopy(self.last_state),
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


def _new_container_id() -> str:
    return "containerd://" + uuid.uuid4().hex + uuid.uuid4().hex


def _term_matches(term: dict[str, Any], node: dict[str, Any]) -> bool:
    labels = node["metadata"].get("labels") or {}
    for expr in term.get("matchExpressions") or []:
        if not _expr_matches(expr, labels.get(expr.get("key")), expr.get("key") in labels):
            return False
    for expr in term.get("matchFields") or []:
        if expr.get("key") == "metadata.name" and not _expr_matches(expr, node["metadata"]["name"], True):
            return False
    return True


def _expr_matches(expr: dict[str, Any], value: str | None, present: bool) -> bool:
    op = expr.get("operator")
    values = [str(v) for v in expr.get("values") or []]
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values:
        try:
            return int(str(value)) > int(values[0]) if op == "Gt" else int(str(value)) < int(values[0])
        except ValueError:
            return False
    return False


def node_fits(pod: dict[str, Any], node: dict[str, Any]) -> str | None:
    """Return why ``node`` cannot run ``pod`` (a scheduler reason), or None when it fits."""
    spec = pod.get("spec") or {}
    if not node_is_ready(node):
        return "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
    if (node.get("spec") or {}).get("unschedulable"):
        return "node(s) were unschedulable"
    labels = node["metadata"].get("labels") or {}
    selector = spec.get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return "node(s) didn't match Pod's node affinity/selector"
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if terms and not any(_term_matches(t, node) for t in terms):
        return "node(s) didn't match Pod's node affinity/selector"
    return None


def pick_node(
    pod: dict[str, Any], nodes: list[dict[str, Any]], load: dict[str, int]
) -> tuple[str | None, str]:
    """Choose the least loaded node that fits, or return ``(None, unschedulable message)``."""
    fitting: list[str] = []
    reasons: dict[str, int] = {}
    for node in nodes:
        why = node_fits(pod, node)
        if why is None:
            fitting.append(node["metadata"]["name"])
        else:
            reasons[why] = reasons.get(why, 0) + 1
    if fitting:
        return min(fitting, key=lambda n: (load.get(n, 0), n)), ""
    total = len(nodes)
    detail = ", ".join(f"{count} {why}" for why, count in sorted(reasons.items()))
    message = f"0/{total} nodes are available" + (f": {detail}." if detail else ".")
    message += (
        f" preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."
    )
    return None, message


class PodWorker(threading.Thread):
    """Run one pod from scheduling to deletion."""

    def __init__(self, kubelet: Kubelet, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}-{meta['name']}", daemon=True)
        self.kubelet = kubelet
        self.pod = pod
        self.namespace: str = meta["namespace"]
        self.pod_name: str = meta["name"]
        self.uid: str = meta["uid"]
        spec = pod["spec"]
        self.policy: str = spec.get("restartPolicy", "Always")
        self.node: str = spec.get("nodeName") or ""
        self.ip = ""
        self.local: LocalPod | None = None
        self.workdir: Path = kubelet.workdir / f"{self.namespace}_{self.pod_name}_{self.uid[:8]}"
        self.inits = [
            ContainerState(c, init=True)
            for c in spec.get("initContainers") or []
            if c.get("restartPolicy") != "Always"
        ]
        sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        self.mains = [ContainerState(c) for c in sidecars + list(spec.get("containers") or [])]
        for c in self.mains:
            c.state = {"waiting": {"reason": "PodInitializing" if self.inits else "ContainerCreating"}}
        for c in self.inits:
            c.state = {"waiting": {"reason": "PodInitializing"}}
        self.scheduled: tuple[str, str, str] | None = None  # (status, reason, message)
        self.initialized = not self.inits
        self.init_failed = False
        self.started_time = 0.0
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.grace = 0.0
        self.remove_when_stopped = False
        self.probe_failing = False
        self.lock = threading.RLock()
        self._transitions: dict[str, tuple[str, str]] = {}
        self._last_schedule_message = ""

    # -- requests from other threads --------------------------------------------------------
    def request_stop(self, grace: float, remove: bool) -> None:
        """Ask the worker to stop the pod's processes (and delete the object when ``remove``)."""
        with self.lock:
            if self.stop_event.is_set():
                self.grace = min(self.grace, grace)
                self.remove_when_stopped = self.remove_when_stopped or remove
            else:
                self.grace, self.remove_when_stopped = grace, remove
                self.stop_event.set()
        self.wake.set()

    def container(self, name: str | None) -> ContainerState:
        """Return a container's state by name (the only container when ``name`` is empty)."""
        everything = self.mains + self.inits
        if not name:
            if len(self.mains) == 1:
                return self.mains[0]
            names = " ".join(c.name for c in self.mains)
            raise bad_request(
                f"a container name must be specified for pod {self.pod_name}, choose one of: [{names}]"
            )
        for c in everything:
            if c.name == name:
                return c
        raise bad_request(f"container {name} is not valid for pod {self.pod_name}")

    # -- the thread -----------------------------------------------------------------------
    def run(self) -> None:
        try:
            if self._schedule() and self._start_loop():
                self._run_loop()
        except Exception:
            log.exception("pod worker %s/%s failed", self.namespace, self.pod_name)
        finally:
            self._teardown()

    def _event(
        self, reason: str, message: str, *, type_: str = "Normal", container: ContainerState | None = None
    ) -> None:
        pod = self.kubelet.store.find("pods", self.namespace, self.pod_name) or self.pod
        field_path = ""
        if container is not None:
            field_path = f"spec.{'initContainers' if container.init else 'containers'}{{{container.name}}}"
        self.kubelet.events.record(pod, reason, message, type_=type_, host=self.node, field_path=field_path)

    def _sleep(self, seconds: float) -> bool:
        """Wait up to ``seconds``; return False when a stop was requested."""
        deadline = time.monotonic() + seconds
        while not self.stop_event.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            self.wake.wait(min(left, 0.5))
            self.wake.clear()
        return False

    def _schedule(self) -> bool:
        while not self.stop_event.is_set():
            nodes, _ = self.kubelet.store.list("nodes")
            if self.node:
                if any(n["metadata"]["name"] == self.node for n in nodes):
                    break
            else:
                chosen, message = pick_node(self.pod, nodes, self.kubelet.load())
                if chosen:
                    self.node = chosen
                    break
                self.scheduled = ("False", "Unschedulable", message)
                self._publish()
                if message != self._last_schedule_message:
                    self._last_schedule_message = message
                    pod = self.kubelet.store.find("pods", self.namespace, self.pod_name) or self.pod
                    self.kubelet.events.record(
                        pod, "FailedScheduling", message, type_="Warning", component="default-scheduler"
                    )
            self.wake.wait(0.5)
            self.wake.clear()
        if self.stop_event.is_set():
            return False
        self.scheduled = ("True", "", "")
        self.ip = free_loopback_ip(self._port())
        self.started_time = time.time()
        self._publish()
        pod = self.kubelet.store.find("pods", self.namespace, self.pod_name) or self.pod
        self.kubelet.events.record(
            pod,
            "Scheduled",
            f"Successfully assigned {self.namespace}/{self.pod_name} to {self.node}",
            component="default-scheduler",
        )
        return True

    def _port(self) -> int:
        for c in self.pod["spec"].get("containers") or []:
            for p in c.get("ports") or []:
                return int(p["containerPort"])
        return 80

    def _start_loop(self) -> bool:
        """Start the pod, retrying image failures and init failures with back-off."""
        attempt = 0
        while not self.stop_event.is_set():
            failure = self._start_once()
            if failure is None:
                return True
            if failure == "fatal":
                return True  # stays Failed until deleted
            attempt += 1
            if not self._sleep(self.kubelet.backoff(attempt)):
                return False
        return False

    def _image_failure(self, containers: list[ContainerState], reason_text: str) -> str:
        for c in containers:
            self._event("Pulling", f'Pulling image "{c.image}"', container=c)
            c.state = {"waiting": {"reason": "ErrImagePull", "message": reason_text}}
            self._event(
                "Failed", f'Failed to pull image "{c.image}": {reason_text}', type_="Warning", container=c
            )
            self._event("Failed", "Error: ErrImagePull", type_="Warning", container=c)
        self._publish()
        if not self._sleep(min(1.0, self.kubelet.backoff(1))):
            return "stopped"
        for c in containers:
            c.state = {
                "waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{c.image}"'}
            }
            self._event("BackOff", f'Back-off pulling image "{c.image}"', container=c)
            self._event("Failed", "Error: ImagePullBackOff", type_="Warning", container=c)
        self._publish()
        return "retry"

    def _start_once(self) -> str | None:
        everything = self.inits + self.mains
        failing = [c for c in everything if c.image in self.kubelet.failing_images]
        if failing:
            return self._image_failure(
                failing, "rpc error: code = NotFound desc = failed to pull and unpack image: not found"
            )
        offsets = {c.name: file_size(self.workdir / "logs" / f"{c.name}.log") for c in everything}
        for c in self.inits:
            self._event("Pulled", f'Container image "{c.image}" already present on machine', container=c)
            self._event("Created", f"Created container {c.name}", container=c)
            self._event("Started", f"Started container {c.name}", container=c)
            c.container_id = _new_container_id()
        if self.inits:
            self.inits[0].state = {"running": {"startedAt": rfc3339(time.time())}}
            self._publish()
        try:
            local = self.kubelet.start(self.pod, self.workdir, self)
        except ValidationError as exc:
            for c in self.inits:
                c.container_id = ""
                c.state = {"waiting": {"reason": "PodInitializing"}}
            named = re.findall(r"container '([^']+)'", str(exc))
            culprits = [c for c in everything if c.name in named] or everything
            return self._image_failure(culprits, str(exc))
        except PodStartError as exc:
            return self._init_failed(exc, offsets)
        now = rfc3339(time.time())
        for c in self.inits:
            c.logs = LogBuffer(self.workdir / "logs" / f"{c.name}.log", offsets[c.name])
            c.logs.finish()
            c.state = {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": now,
                    "finishedAt": now,
                    "containerID": c.container_id,
                }
            }
        self.initialized = True
        with self.lock:
            self.local = local
        for c in self.mains:
            proc = next(p for p in local.containers if p.name == c.name)
            self._mark_running(c, proc, offsets[c.name])
        self._publish()
        return None

    def _mark_running(self, c: ContainerState, proc: ContainerProcess, offset: int) -> None:
        c.proc = proc
        c.prev_logs, c.logs = c.logs, LogBuffer(proc.log_path, offset)
        c.container_id = _new_container_id()
        c.started_at = time.time()
        c.state = {"running": {"startedAt": rfc3339(c.started_at)}}
        c.successes = c.failures = 0
        c.ready = False
        probe = c.spec.get("readinessProbe") or {}
        c.next_probe = time.monotonic() + float(probe.get("initialDelaySeconds") or 0)
        self._event("Pulled", f'Container image "{c.image}" already present on machine', container=c)
        self._event("Created", f"Created container {c.name}", container=c)
        self._event("Started", f"Started container {c.name}", container=c)

    def _init_failed(self, exc: PodStartError, offsets: dict[str, int]) -> str:
        m = re.search(r"init container '([^']+)'", exc.reason)
        failed_name = m.group(1) if m else self.inits[0].name
        now = rfc3339(time.time())
        reached = True
        for c in self.inits:
            c.logs = LogBuffer(self.workdir / "logs" / f"{c.name}.log", offsets[c.name])
            c.logs.finish()
            if c.name == failed_name:
                code = exit_status(exc.exit_code if exc.exit_code is not None else 1)
                terminated = {
                    "exitCode": code,
                    "reason": "Error",
                    "startedAt": now,
                    "finishedAt": now,
                    "containerID": c.container_id,
                }
                if self.policy == "Never":
                    c.state = {"terminated": terminated}
                else:
                    c.last_state = {"terminated": terminated}
                    c.restart_count += 1
                    c.state = {
                        "waiting": {
                            "reason": "CrashLoopBackOff",
                            "message": f"back-off restarting failed container={c.name} pod={self.pod_name}_{self.namespace}({self.uid})",
                        }
                    }
                    self._event(
                        "BackOff",
                        f"Back-off restarting failed container {c.name} in pod {self.pod_name}_{self.namespace}({self.uid})",
                        type_="Warning",
                        container=c,
                    )
                reached = False
            elif reached:
                c.state = {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": now,
                        "finishedAt": now,
                        "containerID": c.container_id,
                    }
                }
            else:
                c.state = {"waiting": {"reason": "PodInitializing"}}
        if self.policy == "Never":
            self.init_failed = True
            self._publish()
            return "fatal"
        self._publish()
        return "retry"

    def _run_loop(self) -> None:
        while not self.stop_event.is_set():
            changed = False
            for c in self.mains:
                if c.logs is not None:
                    c.logs.pump()
                changed |= self._check_exit(c)
                changed |= self._maybe_restart(c)
            changed |= self._probe_all()
            if changed:
                self._publish()
            else:
                self._publish()  # cheap when nothing differs; picks up node readiness changes
            self.wake.wait(_TICK)
            self.wake.clear()

    def _check_exit(self, c: ContainerState) -> bool:
        if c.proc is None or "running" not in c.state:
            return False
        code = c.proc.exit_code()
        if code is None:
            return False
        self.kubelet.reap(c.proc.shim_pid)
        if c.logs is not None:
            c.logs.finish()
        status = exit_status(code)
        terminated: dict[str, Any] = {
            "exitCode": status,
            "reason": "Completed" if status == 0 else "Error",
            "startedAt": rfc3339(c.started_at),
            "finishedAt": rfc3339(time.time()),
            "containerID": c.container_id,
        }
        if code < 0:
            terminated["signal"] = -code
        c.ready = False
        restart = self.policy == "Always" or (self.policy == "OnFailure" and status != 0)
        if not restart:
            c.state = {"terminated": terminated}
            return True
        c.last_state = {"terminated": terminated}
        delay = self.kubelet.backoff(c.restart_count)
        c.next_restart = time.monotonic() + delay
        if delay > 0:
            c.state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {delay:g}s restarting failed container={c.name} pod={self.pod_name}_{self.namespace}({self.uid})",
                }
            }
            self._event(
                "BackOff",
                f"Back-off restarting failed container {c.name} in pod {self.pod_name}_{self.namespace}({self.uid})",
                type_="Warning",
                container=c,
            )
        else:
            c.state = {"terminated": terminated}
        return True

    def _maybe_restart(self, c: ContainerState) -> bool:
        if c.next_restart is None or time.monotonic() < c.next_restart or self.local is None:
            return False
        c.next_restart = None
        single = copy.deepcopy(self.pod)
        single["spec"]["initContainers"] = []
        single["spec"]["containers"] = [copy.deepcopy(c.spec)]
        offset = file_size(self.workdir / "logs" / f"{c.name}.log")
        try:
            if c.image in self.kubelet.failing_images:
                raise ValidationError(f"container {c.name!r}: image pull failure injected")
            restarted = self.kubelet.start(single, self.workdir, self)
        except (ValidationError, PodStartError) as exc:
            c.state = {"waiting": {"reason": "ErrImagePull", "message": str(exc)}}
            c.next_restart = time.monotonic() + self.kubelet.backoff(c.restart_count + 1)
            return True
        proc = restarted.containers[0]
        with self.lock:
            self.local.containers = [proc if p.name == c.name else p for p in self.local.containers]
        c.restart_count += 1
        self._mark_running(c, proc, offset)
        return True

    def _probe_all(self) -> bool:
        changed = False
        node_ready = self.kubelet.node_ready(self.node)
        for c in self.mains:
            if "running" not in c.state:
                continue
            probe = c.spec.get("readinessProbe") or {}
            url = readiness_url({"spec": {"containers": [c.spec]}}, self.ip) if probe.get("httpGet") else None
            if url is None:
                if not c.ready:
                    c.ready, changed = True, True
                continue
            if not node_ready or time.monotonic() < c.next_probe:
                continue
            if self.probe_failing:
                ok, detail = (
                    False,
                    "HTTP probe failed with statuscode: 503 (failure injected by the emulator)",
                )
            else:
                ok, detail = probe_http(url, timeout=float(probe.get("timeoutSeconds") or 1))
            period = float(probe.get("periodSeconds") or 10)
            if self.kubelet.probe_period_max is not None:
                period = min(period, self.kubelet.probe_period_max)
            c.next_probe = time.monotonic() + period
            if ok:
                c.successes, c.failures = c.successes + 1, 0
                if not c.ready and c.successes >= int(probe.get("successThreshold") or 1):
                    c.ready, changed = True, True
            else:
                c.successes, c.failures = 0, c.failures + 1
                self._event("Unhealthy", f"Readiness probe failed: {detail}", type_="Warning", container=c)
                if c.ready and c.failures >= int(probe.get("failureThreshold") or 3):
                    c.ready, changed = False, True
        return changed

    def _teardown(self) -> None:
        with self.lock:
            local = self.local
        if local is not None:
            for c in self.mains:
                if "running" in c.state:
                    self._event("Killing", f"Stopping container {c.name}", container=c)
            try:
                stop_pod(local, self.grace)
            finally:
                for proc in local.containers:
                    self.kubelet.reap(proc.shim_pid)
        for c in self.mains + self.inits:
            if c.logs is not None:
                c.logs.finish()
        if self.remove_when_stopped:
            with contextlib.suppress(ApiError):
                self.kubelet.store.remove("pods", self.namespace, self.pod_name)
            self.kubelet.pod_removed(self)
        else:
            self.kubelet.forget(self)

    # -- status ---------------------------------------------------------------------------
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

    def _phase(self) -> str:
        if self.init_failed:
            return "Failed"
        if self.local is None:
            return "Pending"
        terminated = [
            c.state["terminated"]["exitCode"]
            for c in self.mains
            if "terminated" in c.state and c.next_restart is None
        ]
        if len(terminated) == len(self.mains):
            return "Succeeded" if all(code == 0 for code in terminated) else "Failed"
        return "Running"

    def status(self) -> dict[str, Any]:
        """Return the pod status the kubelet reports now."""
        status: dict[str, Any] = {"phase": self._phase(), "qosClass": "BestEffort"}
        conditions = []
        if self.scheduled is not None and self.scheduled[0] == "False":
            conditions.append(self._condition("PodScheduled", "False", self.scheduled[1], self.scheduled[2]))
            status["conditions"] = conditions
            return status
        if self.scheduled is None:
            return status
        node_ready = self.kubelet.node_ready(self.node)
        not_ready = [c.name for c in self.mains if not c.ready]
        unfinished = [c.name for c in self.inits if c.state.get("terminated", {}).get("exitCode") != 0]
        conditions.append(self._condition("PodReadyToStartContainers", "True"))
        if self.initialized:
            conditions.append(self._condition("Initialized", "True"))
        else:
            conditions.append(
                self._condition(
                    "Initialized",
                    "False",
                    "ContainersNotInitialized",
                    f"containers with incomplete status: [{' '.join(unfinished)}]",
                )
            )
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
        status["conditions"] = conditions
        status["hostIP"] = NODE_IP
        status["hostIPs"] = [{"ip": NODE_IP}]
        status["podIP"] = self.ip
        status["podIPs"] = [{"ip": self.ip}]
        status["startTime"] = rfc3339(self.started_time)
        if self.inits:
            status["initContainerStatuses"] = [c.status() for c in self.inits]
        status["containerStatuses"] = [c.status() for c in self.mains]
        return status

    def _publish(self) -> None:
        status = self.status()
        node = self.node

        def change(obj: dict[str, Any]) -> None:
            if node:
                obj["spec"]["nodeName"] = node
            obj["status"] = status

        try:
            self.kubelet.store.modify("pods", self.namespace, self.pod_name, change)
        except ApiError:
            self.request_stop(0, remove=False)  # the object is gone: stop the processes


class Kubelet:
    """Run every pod of the emulated cluster as local processes.

    :param store: the object store
    :param events: the event recorder
    :param workdir: where pod directories live
    :param mark: value of ``K8S_EMULATOR_MARK`` in every container's environment (finds strays)
    :param backoff: ``(base, cap)`` of container restart and image pull back-off, in seconds
    :param probe_period_max: cap on readiness ``periodSeconds`` (None honours it exactly)
    """

    def __init__(
        self,
        store: Store,
        events: EventRecorder,
        workdir: Path,
        *,
        mark: str,
        backoff: tuple[float, float] = (10.0, 300.0),
        probe_period_max: float | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.workdir = workdir
        self.mark = mark
        self.backoff_base, self.backoff_cap = backoff
        self.probe_period_max = probe_period_max
        self.failing_images: set[str] = set()
        self.workers: dict[tuple[str, str], PodWorker] = {}
        self.lock = threading.RLock()
        self.all_pids: set[int] = set()
        self.closed = False
        self.on_pod_removed: Callable[[str], None] | None = None

    def backoff(self, attempt: int) -> float:
        """Return the delay before restart number ``attempt`` (0 = immediate)."""
        if attempt <= 0:
            return 0.0
        return float(min(self.backoff_base * 2 ** (attempt - 1), self.backoff_cap))

    def load(self) -> dict[str, int]:
        """Count pods per node (for spreading)."""
        with self.lock:
            out: dict[str, int] = {}
            for w in self.workers.values():
                if w.node:
                    out[w.node] = out.get(w.node, 0) + 1
            return out

    def node_ready(self, name: str) -> bool:
        """Tell whether the node exists and is Ready."""
        node = self.store.find("nodes", "", name)
        return node is not None and node_is_ready(node)

    def start(self, pod: dict[str, Any], workdir: Path, worker: PodWorker) -> LocalPod:
        """Start ``pod`` with the project's pod runner (called on the worker's own thread)."""
        local = start_pod(
            pod,
            workdir,
            ip=worker.ip,
            node_name=worker.node,
            namespace=worker.namespace,
            image_command=image_command,
            extra_base_env={MARK_ENV: f"{self.mark}/{worker.uid}"},
            die_with_parent=True,
        )
        with self.lock:
            for c in local.containers:
                self.all_pids.add(c.shim_pid)
        return local

    def reap(self, pid: int) -> None:
        """Collect an exited shim so that it does not linger as a zombie."""
        if pid:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)

    # -- API entry points ---------------------------------------------------------------------
    def pod_created(self, pod: dict[str, Any]) -> None:
        """Start a worker for a newly created pod."""
        with self.lock:
            if self.closed:
                return
            worker = PodWorker(self, pod)
            self.workers[(worker.namespace, worker.pod_name)] = worker
            worker.start()

    def worker(self, namespace: str, name: str) -> PodWorker:
        """Return the worker of a pod or raise 404."""
        with self.lock:
            w = self.workers.get((namespace, name))
        if w is None:
            raise not_found("pods", name)
        return w

    def delete_pod(self, namespace: str, name: str, grace: int | None) -> dict[str, Any]:
        """Delete a pod: graceful (deletionTimestamp, SIGTERM, then removal) or immediate."""
        pod = self.store.get("pods", namespace, name)
        if grace is None:
            grace = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
        with self.lock:
            w = self.workers.get((namespace, name))
        bound = w is not None and w.scheduled is not None and w.scheduled[0] == "True"
        if w is None or grace <= 0 or not bound:
            removed = self.store.remove("pods", namespace, name)
            if w is not None:
                w.request_stop(0, remove=False)
            return removed
        current = pod["metadata"].get("deletionGracePeriodSeconds")
        if current is not None and int(current) <= grace:
            return pod

        def mark(obj: dict[str, Any]) -> None:
            obj["metadata"]["deletionTimestamp"] = rfc3339(time.time() + grace)
            obj["metadata"]["deletionGracePeriodSeconds"] = grace

        marked = self.store.modify("pods", namespace, name, mark)
        w.request_stop(float(grace), remove=True)
        return marked

    def pod_removed(self, worker: PodWorker) -> None:
        """Forget a worker whose pod object is gone and let the namespace finish terminating."""
        self.forget(worker)
        if self.on_pod_removed is not None:
            self.on_pod_removed(worker.namespace)

    def forget(self, worker: PodWorker) -> None:
        """Drop a finished worker from the table (unless a newer pod took its name)."""
        with self.lock:
            key = (worker.namespace, worker.pod_name)
            if self.workers.get(key) is worker:
                del self.workers[key]

    def workers_on(self, node: str) -> list[PodWorker]:
        """Return the workers of the pods bound to ``node``."""
        with self.lock:
            return [w for w in self.workers.values() if w.node == node]

    def kill_container(
        self, namespace: str, name: str, sig: int = signal.SIGKILL, container: str | None = None
    ) -> int:
        """Send ``sig`` to a container's program (not its shim); return the pid signalled."""
        w = self.worker(namespace, name)
        c = w.container(container)
        if c.proc is None:
            raise RuntimeError(f"container {c.name} of pod {namespace}/{name} is not running")
        pid = c.proc.pid() or c.proc.shim_pid
        os.kill(pid, sig)
        w.wake.set()
        return pid

    def kill_strays(self) -> None:
        """SIGKILL every descendant process that carries this emulator's mark (e.g. running init containers)."""
        with contextlib.suppress(psutil.Error):
            for proc in psutil.Process().children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if proc.environ().get(MARK_ENV, "").startswith(self.mark + "/"):
                        proc.kill()

    def close(self, timeout: float = 15.0) -> None:
        """Stop every pod immediately and wait for the workers to finish."""
        with self.lock:
            self.closed = True
            workers = list(self.workers.values())
        for w in workers:
            w.request_stop(0, remove=False)
        deadline = time.monotonic() + timeout
        while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
            self.kill_strays()  # unblocks init containers the runner waits for
            for w in workers:
                w.join(0.1)
        self.kill_strays()
        for pid in list(self.all_pids):
            self.reap(pid)
