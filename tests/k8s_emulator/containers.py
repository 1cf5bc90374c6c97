"""One container as the kubelet tracks it: waiting → running → terminated, and the status it reports.

``state`` and ``last_state`` keep the API's own shape (``{"waiting": {"reason": ...}}``), since
the API server serves them as they are; the transitions below are the only places that build them.
"""

from __future__ import annotations

import copy
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from tests.k8s_emulator.objects import rfc3339

if TYPE_CHECKING:
    from airflow_ais_etl.cluster.local.processes import ContainerProcess
    from tests.k8s_emulator.logbuffer import LogBuffer

__all__ = ["ContainerState", "RestartPolicy", "Waiting", "exit_status", "new_container_id"]


class RestartPolicy(str, Enum):
    """A pod's ``restartPolicy``: which container exits the kubelet answers with a restart."""

    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    NEVER = "Never"

    def __str__(self) -> str:
        return self.value

    def restarts(self, status: int) -> bool:
        """Tell whether a container that exited with ``status`` is started again."""
        return self is RestartPolicy.ALWAYS or (self is RestartPolicy.ON_FAILURE and status != 0)


class Waiting(str, Enum):
    """Why a container waits (``state.waiting.reason``)."""

    CONTAINER_CREATING = "ContainerCreating"
    POD_INITIALIZING = "PodInitializing"
    ERR_IMAGE_PULL = "ErrImagePull"
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
    CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"

    def __str__(self) -> str:
        return self.value


def exit_status(code: int) -> int:
    """Map the pod runner's exit code (negative = signal) to the container's (128 + signal)."""
    return 128 - code if code < 0 else code


def new_container_id() -> str:
    return "containerd://" + uuid.uuid4().hex + uuid.uuid4().hex


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

    @property
    def pull_policy(self) -> str:
        return str(self.spec.get("imagePullPolicy") or "IfNotPresent")

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def exit_code(self) -> int | None:
        """Return the exit code while terminated (None in any other state)."""
        terminated = self.state.get("terminated")
        return None if terminated is None else int(terminated["exitCode"])

    # -- transitions ------------------------------------------------------------------------
    def wait(self, reason: Waiting, message: str = "") -> None:
        waiting: dict[str, Any] = {"reason": reason.value}
        if message:
            waiting["message"] = message
        self.state = {"waiting": waiting}

    def run(self, started_at: float) -> None:
        self.state = {"running": {"startedAt": rfc3339(started_at)}}

    def terminated(self, status: int, *, started_at: float, finished_at: float) -> dict[str, Any]:
        """Return the ``terminated`` record of a run that ended with ``status`` (its state is not changed)."""
        return {
            "exitCode": status,
            "reason": "Completed" if status == 0 else "Error",
            "startedAt": rfc3339(started_at),
            "finishedAt": rfc3339(finished_at),
            "containerID": self.container_id,
        }

    def terminate(self, record: dict[str, Any]) -> None:
        self.state = {"terminated": record}

    def crash_loop(self, record: dict[str, Any], message: str) -> None:
        """Keep how the run ended as ``lastState`` and wait in ``CrashLoopBackOff``."""
        self.last_state = {"terminated": record}
        self.wait(Waiting.CRASH_LOOP_BACK_OFF, message)

    def started(self, proc: ContainerProcess, logs: LogBuffer) -> None:
        """Enter a new run of the program ``proc``, not ready until its probe says so."""
        self.proc = proc
        self.prev_logs, self.logs = self.logs, logs
        self.container_id = new_container_id()
        self.started_at = time.time()
        self.run(self.started_at)
        self.successes = self.failures = 0
        self.ready = False
        probe = self.spec.get("readinessProbe") or {}
        self.next_probe = time.monotonic() + float(probe.get("initialDelaySeconds") or 0)

    # -- status -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        image = self.image
        digest = hashlib.sha256(image.encode()).hexdigest()
        out: dict[str, Any] = {
            "name": self.name,
            "image": image,
            "imageID": f"{image.split(':')[0]}@sha256:{digest}" if self.container_id else "",
            "ready": self.ready,
            "restartCount": self.restart_count,
            "started": self.running,
            "state": copy.deepcopy(self.state),
            "lastState": copy.deepcopy(self.last_state),
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out
