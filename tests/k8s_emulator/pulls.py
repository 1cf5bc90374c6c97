"""The kubelet's image step before each container start: use, pull or fail, with the kubelet's events."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from tests.k8s_emulator.containers import Waiting
from tests.k8s_emulator.images import PullStep, pull_step

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.k8s_emulator.containers import ContainerState
    from tests.k8s_emulator.images import ImageCatalog
    from tests.k8s_emulator.podevents import PodEvents

__all__ = ["ImagePuller"]

_PULL_FAILURE = (
    'rpc error: code = NotFound desc = failed to pull and unpack image "{0}": '
    'failed to resolve reference "{0}": {0}: not found'
)
_NOT_RUNNABLE = (
    "image {0!r} cannot run locally: the emulator runs the project's runtime images, AIS's "
    "aistorage/runtime_python and containers whose `command` names a program on this machine"
)


class ImagePuller:
    """Make one pod's container images present as their ``imagePullPolicy`` says.

    :param images: what the nodes hold and the registry serves
    :param runnable: whether the emulator can run a container spec (else its image "fails to pull")
    :param events: the pod's event recorder
    :param sleep: waits the pull time; returns False when the pod is being stopped
    :param pull_seconds: how long a successful pull takes
    """

    def __init__(
        self,
        images: ImageCatalog,
        runnable: Callable[[dict[str, Any]], bool],
        events: PodEvents,
        sleep: Callable[[float], bool],
        pull_seconds: float,
    ) -> None:
        self._images = images
        self._runnable = runnable
        self._events = events
        self._sleep = sleep
        self._pull_seconds = pull_seconds

    def pull(self, c: ContainerState, node: str) -> tuple[PullStep, str]:
        """Use or pull ``c``'s image on ``node``; return the step taken and, on failure, why."""
        served, runnable = self._images.pullable(c.image), self._runnable(c.spec)
        present = self._images.present(node, c.image)
        step = pull_step(c.pull_policy, present=present, pullable=served and runnable)
        if step is PullStep.USE_PRESENT:
            self._events.image_present(c)
            return step, ""
        if step is PullStep.NEVER_PULL:
            return step, f'Container image "{c.image}" is not present with pull policy of Never'
        self._events.pulling(c)
        if step is PullStep.PULL_FAILS:
            return step, (_NOT_RUNNABLE if served else _PULL_FAILURE).format(c.image)
        started = time.monotonic()
        self._sleep(self._pull_seconds)
        self._images.pulled(node, c.image)
        size = 20_000_000 + int(hashlib.sha256(c.image.encode()).hexdigest()[:6], 16)
        self._events.pulled(c, time.monotonic() - started, size)
        return step, ""

    def report(self, c: ContainerState, step: PullStep, message: str) -> None:
        """Put a container whose image could not be had in its waiting state, with the events."""
        if step is PullStep.NEVER_PULL:
            c.wait(Waiting.ERR_IMAGE_NEVER_PULL, message)
            self._events.never_pull(c, message)
        elif step is PullStep.PULL_FAILS:
            c.wait(Waiting.ERR_IMAGE_PULL, message)
            self._events.pull_failed(c, message)
