"""One pod's life on the emulated kubelet: schedule → start → run → tear down, on its own thread.

The thread lives as long as the pod's processes (the pod runner's ``die_with_parent`` ties the
processes to the thread that started them). It binds the pod to a node, gives it a loopback IP,
starts it with the project's pod runner (init failures and image pull failures back off and retry),
watches exits and restarts containers as the restart policy says, runs readiness probes, and
publishes the pod's status after every step.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import threading
import time
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from airflow_ais_etl.cluster.local.network import free_loopback_ip
from airflow_ais_etl.cluster.local.processes import stop_pod
from airflow_ais_etl.etl.errors import PodStartError, ValidationError
from tests.k8s_emulator.containers import (
    ContainerState,
    RestartPolicy,
    Waiting,
    exit_status,
    new_container_id,
)
from tests.k8s_emulator.images import PullStep
from tests.k8s_emulator.logbuffer import LogBuffer, file_size
from tests.k8s_emulator.objects import ApiError, bad_request
from tests.k8s_emulator.podevents import PodEvents
from tests.k8s_emulator.podstatus import Placement, StatusReporter
from tests.k8s_emulator.pulls import ImagePuller
from tests.k8s_emulator.readiness import probe_container
from tests.k8s_emulator.volumes import pick_node_with_claims

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.cluster.local.processes import ContainerProcess, LocalPod
    from tests.k8s_emulator.events import EventRecorder
    from tests.k8s_emulator.images import ImageCatalog
    from tests.k8s_emulator.scheduler import Requests
    from tests.k8s_emulator.store import Store

__all__ = ["PodHost", "PodWorker", "StartOutcome"]

log = logging.getLogger(__name__)

_TICK = 0.1
_DEFAULT_PORT = 80
_CONFIG_ERROR = re.compile(r"(secret|configmap) '[^']*' or its key '[^']*' not found")


class StartOutcome(str, Enum):
    """How one attempt to start a pod ended."""

    STARTED = "started"
    RETRY = "retry"
    """Back off, then try again (image pull or init container failures)."""
    FAILED = "failed"
    """An init container failed and the policy is Never: the pod stays Failed until deleted."""
    STOPPED = "stopped"
    """A stop was requested while waiting."""

    def __str__(self) -> str:
        return self.value


class PodHost(Protocol):
    """What a pod worker asks of its kubelet."""

    store: Store
    events: EventRecorder
    workdir: Path
    images: ImageCatalog
    pull_seconds: float
    probe_period_max: float | None

    def backoff(self, attempt: int) -> float: ...

    def load(self) -> dict[str, int]: ...

    def requested(self) -> dict[str, Requests]: ...

    def node_ready(self, name: str) -> bool: ...

    def start(self, pod: dict[str, Any], workdir: Path, worker: PodWorker) -> LocalPod: ...

    def runnable(self, container: dict[str, Any]) -> bool: ...

    def reap(self, pid: int) -> None: ...

    def forget(self, worker: PodWorker) -> None: ...

    def pod_removed(self, worker: PodWorker) -> None: ...


class PodWorker(threading.Thread):
    """Run one pod from scheduling to deletion."""

    def __init__(self, kubelet: PodHost, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}-{meta['name']}", daemon=True)
        self.kubelet = kubelet
        self.pod = pod
        self.namespace: str = meta["namespace"]
        self.pod_name: str = meta["name"]
        self.uid: str = meta["uid"]
        spec = pod["spec"]
        self.policy = RestartPolicy(spec.get("restartPolicy", RestartPolicy.ALWAYS.value))
        self.node: str = spec.get("nodeName") or ""
        self.ip = ""
        self.local: LocalPod | None = None
        self.workdir: Path = kubelet.workdir / f"{self.namespace}_{self.pod_name}_{self.uid[:8]}"
        self.inits, self.mains = _containers(spec)
        self.placement = Placement.PENDING
        self.schedule_message = ""
        self.initialized = not self.inits
        self.init_failed = False
        self.started_time = 0.0
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.grace = 0.0
        self.remove_when_stopped = False
        self.probe_failing = False
        self.lock = threading.RLock()
        self._reporter = StatusReporter()
        self.events = PodEvents(kubelet.events, kubelet.store, pod)
        self.events.node = self.node
        self.puller = ImagePuller(
            kubelet.images, kubelet.runnable, self.events, self._sleep, kubelet.pull_seconds
        )

    @property
    def started(self) -> bool:
        return self.local is not None

    @property
    def bound(self) -> bool:
        return self.placement is Placement.BOUND

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
        if not name:
            if len(self.mains) == 1:
                return self.mains[0]
            names = " ".join(c.name for c in self.mains)
            raise bad_request(
                f"a container name must be specified for pod {self.pod_name}, choose one of: [{names}]"
            )
        for c in self.mains + self.inits:
            if c.name == name:
                return c
        raise bad_request(f"container {name} is not valid for pod {self.pod_name}")

    # -- the thread -------------------------------------------------------------------------
    def run(self) -> None:
        try:
            if self._schedule() and self._start_loop():
                self._run_loop()
        except Exception:
            log.exception("pod worker %s/%s failed", self.namespace, self.pod_name)
        finally:
            self._teardown()

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

    # -- scheduling -------------------------------------------------------------------------
    def _schedule(self) -> bool:
        """Wait until the pod fits a node (or its ``nodeName`` exists), then bind it; False when stopped."""
        while not self.stop_event.is_set() and not self._find_node():
            self.wake.wait(0.5)
            self.wake.clear()
        if self.stop_event.is_set():
            return False
        self.placement = Placement.BOUND
        self.events.node = self.node
        self.ip = free_loopback_ip(self._port())
        self.started_time = time.time()
        self._publish()
        self.events.scheduled()
        return True

    def _find_node(self) -> bool:
        """Pick a node for the pod; report it Unschedulable (one event per new reason) when none fits."""
        nodes, _ = self.kubelet.store.list("nodes")
        if self.node:
            return any(n["metadata"]["name"] == self.node for n in nodes)
        chosen, message = pick_node_with_claims(
            self.kubelet.store, self.namespace, self.pod, nodes, self.kubelet.load(), self.kubelet.requested()
        )
        if chosen:
            self.node = chosen
            return True
        fresh = message != self.schedule_message
        self.placement, self.schedule_message = Placement.UNSCHEDULABLE, message
        self._publish()
        if fresh:
            self.events.unschedulable(message)
        return False

    def _port(self) -> int:
        for c in self.pod["spec"].get("containers") or []:
            for p in c.get("ports") or []:
                return int(p["containerPort"])
        return _DEFAULT_PORT

    # -- starting ---------------------------------------------------------------------------
    def _start_loop(self) -> bool:
        """Start the pod, retrying image failures and init failures with back-off."""
        attempt = 0
        while not self.stop_event.is_set():
            outcome = self._start_once()
            if outcome in (StartOutcome.STARTED, StartOutcome.FAILED):
                return True  # a Failed pod stays so until deleted
            attempt += 1
            if not self._sleep(self.kubelet.backoff(attempt)):
                return False
        return False

    def _start_once(self) -> StartOutcome:
        everything = self.inits + self.mains
        blocked = self._ensure_images(everything)
        if blocked is not None:
            return blocked
        offsets = {c.name: file_size(self._log_path(c)) for c in everything}
        self._create_inits()
        try:
            local = self.kubelet.start(self.pod, self.workdir, self)
        except ValidationError as exc:
            for c in self.inits:
                c.container_id = ""
                c.wait(Waiting.POD_INITIALIZING)
            named = re.findall(r"container '([^']+)'", str(exc))
            culprits = [c for c in everything if c.name in named] or everything
            if _CONFIG_ERROR.search(str(exc)):
                return self._config_error(culprits, str(exc))
            return self._image_failure([(c, str(exc)) for c in culprits])
        except PodStartError as exc:
            return self._init_failed(exc, offsets)
        self._inits_completed(offsets)
        with self.lock:
            self.local = local
        for c in self.mains:
            proc = next(p for p in local.containers if p.name == c.name)
            self._mark_running(c, proc, offsets[c.name])
        self._publish()
        return StartOutcome.STARTED

    def _log_path(self, c: ContainerState) -> Path:
        return self.workdir / "logs" / f"{c.name}.log"

    def _create_inits(self) -> None:
        """Report the init containers created, the first one running (the runner runs them in order)."""
        for c in self.inits:
            self.events.created(c)
            c.container_id = new_container_id()
        if self.inits:
            self.inits[0].run(time.time())
            self._publish()

    # -- images -----------------------------------------------------------------------------
    def _ensure_images(self, containers: list[ContainerState]) -> StartOutcome | None:
        """Pull what the containers need; report the ones whose image cannot be had (None: all fine).

        Init containers run in order, so the first one that cannot start blocks the rest.
        """
        never: list[tuple[ContainerState, str]] = []
        failed: list[tuple[ContainerState, str]] = []
        for c in containers:
            step, message = self.puller.pull(c, self.node)
            if step is PullStep.NEVER_PULL:
                never.append((c, message))
            elif step is PullStep.PULL_FAILS:
                failed.append((c, message))
            if (never or failed) and c.init:
                break
        for c, message in never:
            self.puller.report(c, PullStep.NEVER_PULL, message)
        if failed:
            return self._image_failure(failed)
        if never:
            self._publish()
            return StartOutcome.RETRY
        return None

    def _config_error(self, containers: list[ContainerState], text: str) -> StartOutcome:
        """Report env that names a missing Secret/ConfigMap key (``CreateContainerConfigError``); retry."""
        for c in containers:
            c.wait(Waiting.CREATE_CONTAINER_CONFIG_ERROR, text)
            self.events.kubelet("Failed", f"Error: {text}", type_="Warning", container=c)
        self._publish()
        return StartOutcome.RETRY

    def _image_failure(self, failures: list[tuple[ContainerState, str]]) -> StartOutcome:
        """Report a failed pull (``ErrImagePull``), then the back-off (``ImagePullBackOff``)."""
        for c, reason_text in failures:
            self.puller.report(c, PullStep.PULL_FAILS, reason_text)
        self._publish()
        if not self._sleep(min(1.0, self.kubelet.backoff(1))):
            return StartOutcome.STOPPED
        for c, _text in failures:
            c.wait(Waiting.IMAGE_PULL_BACK_OFF, f'Back-off pulling image "{c.image}"')
            self.events.pull_back_off(c)
        self._publish()
        return StartOutcome.RETRY

    def _finish_init_logs(self, offsets: dict[str, int]) -> None:
        for c in self.inits:
            c.logs = LogBuffer(self._log_path(c), offsets[c.name])
            c.logs.finish()

    def _inits_completed(self, offsets: dict[str, int]) -> None:
        self._finish_init_logs(offsets)
        now = time.time()
        for c in self.inits:
            c.terminate(c.terminated(0, started_at=now, finished_at=now))
        self.initialized = True

    def _init_failed(self, exc: PodStartError, offsets: dict[str, int]) -> StartOutcome:
        """Report the failed init container (the ones before it completed, the ones after it wait)."""
        m = re.search(r"init container '([^']+)'", exc.reason)
        failed_name = m.group(1) if m else self.inits[0].name
        self._finish_init_logs(offsets)
        now = time.time()
        reached = True
        for c in self.inits:
            if c.name == failed_name:
                status = exit_status(exc.exit_code if exc.exit_code is not None else 1)
                self._init_exited(c, c.terminated(status, started_at=now, finished_at=now))
                reached = False
            elif reached:
                c.terminate(c.terminated(0, started_at=now, finished_at=now))
            else:
                c.wait(Waiting.POD_INITIALIZING)
        self.init_failed = self.policy is RestartPolicy.NEVER
        self._publish()
        return StartOutcome.FAILED if self.init_failed else StartOutcome.RETRY

    def _init_exited(self, c: ContainerState, record: dict[str, Any]) -> None:
        if self.policy is RestartPolicy.NEVER:
            c.terminate(record)
            return
        c.restart_count += 1
        c.crash_loop(record, self.events.back_off_message(c))
        self.events.restart_back_off(c)

    def _mark_running(self, c: ContainerState, proc: ContainerProcess, offset: int) -> None:
        c.started(proc, LogBuffer(proc.log_path, offset))
        self.events.created(c)

    # -- running ----------------------------------------------------------------------------
    def _run_loop(self) -> None:
        """Every tick: collect logs, notice exits, restart what is due, probe, publish the status."""
        while not self.stop_event.is_set():
            for c in self.mains:
                if c.logs is not None:
                    c.logs.pump()
                self._check_exit(c)
                self._maybe_restart(c)
            self._probe_all()
            self._publish()  # every tick: cheap, and it picks up node readiness changes
            self.wake.wait(_TICK)
            self.wake.clear()

    def _check_exit(self, c: ContainerState) -> None:
        """Notice that a container's program ended; terminate it or schedule its restart."""
        if c.proc is None or not c.running:
            return
        code = c.proc.exit_code()
        if code is None:
            return
        self.kubelet.reap(c.proc.shim_pid)
        if c.logs is not None:
            c.logs.finish()
        status = exit_status(code)
        record = c.terminated(status, started_at=c.started_at, finished_at=time.time())
        if code < 0:
            record["signal"] = -code
        c.ready = False
        if not self.policy.restarts(status):
            c.terminate(record)
            return
        delay = self.kubelet.backoff(c.restart_count)
        c.next_restart = time.monotonic() + delay
        if delay <= 0:
            c.last_state = {"terminated": record}
            c.terminate(record)
            return
        c.crash_loop(record, self.events.back_off_message(c, delay))
        self.events.restart_back_off(c)

    def _maybe_restart(self, c: ContainerState) -> None:
        """Start a new run of a container whose back-off is over."""
        if c.next_restart is None or time.monotonic() < c.next_restart or self.local is None:
            return
        c.next_restart = None
        single = copy.deepcopy(self.pod)
        single["spec"]["initContainers"] = []
        single["spec"]["containers"] = [copy.deepcopy(c.spec)]
        offset = file_size(self._log_path(c))
        step, message = self.puller.pull(c, self.node)
        if step in (PullStep.NEVER_PULL, PullStep.PULL_FAILS):
            self.puller.report(c, step, message)
            c.next_restart = time.monotonic() + self.kubelet.backoff(c.restart_count + 1)
            return
        try:
            restarted = self.kubelet.start(single, self.workdir, self)
        except (ValidationError, PodStartError) as exc:
            c.wait(Waiting.ERR_IMAGE_PULL, str(exc))
            c.next_restart = time.monotonic() + self.kubelet.backoff(c.restart_count + 1)
            return
        proc = restarted.containers[0]
        with self.lock:
            self.local.containers = [proc if p.name == c.name else p for p in self.local.containers]
        c.restart_count += 1
        self._mark_running(c, proc, offset)

    def _probe_all(self) -> None:
        node_ready = self.kubelet.node_ready(self.node)
        for c in self.mains:
            if not c.running:
                continue
            _changed, failure = probe_container(
                c,
                self.ip,
                node_ready=node_ready,
                failing=self.probe_failing,
                period_max=self.kubelet.probe_period_max,
            )
            if failure is not None:
                self.events.unhealthy(c, failure)

    # -- stopping ---------------------------------------------------------------------------
    def _teardown(self) -> None:
        """Stop the processes (within the grace period), then delete or forget the pod."""
        with self.lock:
            local = self.local
        if local is not None:
            for c in self.mains:
                if c.running:
                    self.events.killing(c)
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

    # -- status -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Return the pod status the kubelet reports now."""
        return self._reporter.status(self, node_ready=self.kubelet.node_ready(self.node))

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


def _containers(spec: dict[str, Any]) -> tuple[list[ContainerState], list[ContainerState]]:
    """Return the init containers that run to completion, and the rest (native sidecars first)."""
    init_specs = list(spec.get("initContainers") or [])
    inits = [ContainerState(c, init=True) for c in init_specs if c.get("restartPolicy") != "Always"]
    sidecars = [c for c in init_specs if c.get("restartPolicy") == "Always"]
    mains = [ContainerState(c) for c in sidecars + list(spec.get("containers") or [])]
    for c in mains:
        c.wait(Waiting.POD_INITIALIZING if inits else Waiting.CONTAINER_CREATING)
    for c in inits:
        c.wait(Waiting.POD_INITIALIZING)
    return inits, mains
