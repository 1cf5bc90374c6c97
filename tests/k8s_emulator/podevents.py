"""The events the kubelet and the scheduler record about one pod, worded as Kubernetes words them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.k8s_emulator.containers import ContainerState
    from tests.k8s_emulator.events import EventRecorder
    from tests.k8s_emulator.store import Store

__all__ = ["PodEvents", "go_duration"]

_WARNING = "Warning"


def go_duration(seconds: float) -> str:
    """Format seconds as Go's ``time.Duration`` prints them (``500ms``, ``10s``, ``1m20s``, ``5m0s``)."""
    if seconds < 1:
        return f"{round(seconds * 1000):d}ms"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:g}s" if minutes else f"{rest:g}s"


class PodEvents:
    """Record events about one pod; ``node`` is the node it is bound to (``""`` before that)."""

    def __init__(self, recorder: EventRecorder, store: Store, pod: dict[str, Any]) -> None:
        self._recorder = recorder
        self._store = store
        self._pod = pod
        meta = pod["metadata"]
        self._namespace: str = meta["namespace"]
        self._name: str = meta["name"]
        self._ref = f"{meta['name']}_{meta['namespace']}({meta['uid']})"
        self.node = ""

    def _current(self) -> dict[str, Any]:
        """Return the pod object as stored now (the one it was created as once it is gone)."""
        return self._store.find("pods", self._namespace, self._name) or self._pod

    def kubelet(
        self, reason: str, message: str, *, type_: str = "Normal", container: ContainerState | None = None
    ) -> None:
        field_path = ""
        if container is not None:
            field_path = f"spec.{'initContainers' if container.init else 'containers'}{{{container.name}}}"
        self._recorder.record(
            self._current(), reason, message, type_=type_, host=self.node, field_path=field_path
        )

    def scheduler(self, reason: str, message: str, *, type_: str = "Normal") -> None:
        self._recorder.record(self._current(), reason, message, type_=type_, component="default-scheduler")

    # -- the scheduler ----------------------------------------------------------------------
    def scheduled(self) -> None:
        self.scheduler("Scheduled", f"Successfully assigned {self._namespace}/{self._name} to {self.node}")

    def unschedulable(self, message: str) -> None:
        self.scheduler("FailedScheduling", message, type_=_WARNING)

    # -- containers -------------------------------------------------------------------------
    def created(self, c: ContainerState) -> None:
        self.kubelet("Created", f"Created container {c.name}", container=c)
        self.kubelet("Started", f"Started container {c.name}", container=c)

    # -- images -----------------------------------------------------------------------------
    def image_present(self, c: ContainerState) -> None:
        self.kubelet("Pulled", f'Container image "{c.image}" already present on machine', container=c)

    def pulling(self, c: ContainerState) -> None:
        self.kubelet("Pulling", f'Pulling image "{c.image}"', container=c)

    def pulled(self, c: ContainerState, seconds: float, size: int) -> None:
        took = f"{seconds:.3f}s"
        message = f'Successfully pulled image "{c.image}" in {took} ({took} including waiting). Image size: {size} bytes.'
        self.kubelet("Pulled", message, container=c)

    def never_pull(self, c: ContainerState, message: str) -> None:
        self.kubelet("ErrImageNeverPull", message, type_=_WARNING, container=c)
        self.kubelet("Failed", "Error: ErrImageNeverPull", type_=_WARNING, container=c)

    def pull_failed(self, c: ContainerState, reason_text: str) -> None:
        self.kubelet(
            "Failed", f'Failed to pull image "{c.image}": {reason_text}', type_=_WARNING, container=c
        )
        self.kubelet("Failed", "Error: ErrImagePull", type_=_WARNING, container=c)

    def pull_back_off(self, c: ContainerState) -> None:
        self.kubelet("BackOff", f'Back-off pulling image "{c.image}"', container=c)
        self.kubelet("Failed", "Error: ImagePullBackOff", type_=_WARNING, container=c)

    def restart_back_off(self, c: ContainerState) -> None:
        message = f"Back-off restarting failed container {c.name} in pod {self._ref}"
        self.kubelet("BackOff", message, type_=_WARNING, container=c)

    def back_off_message(self, c: ContainerState, delay: float | None = None) -> str:
        """Return the ``CrashLoopBackOff`` message of a container (with the delay when known)."""
        wait = f"back-off {go_duration(delay)}" if delay is not None else "back-off"
        return f"{wait} restarting failed container={c.name} pod={self._ref}"

    def unhealthy(self, c: ContainerState, failure: str) -> None:
        self.kubelet("Unhealthy", f"Readiness probe failed: {failure}", type_=_WARNING, container=c)

    def killing(self, c: ContainerState) -> None:
        self.kubelet("Killing", f"Stopping container {c.name}", container=c)
