"""Images on the emulated nodes and in a fake registry, and what ``imagePullPolicy`` makes of them.

Each node starts with the images :class:`ImageCatalog` calls *preloaded* (by default the project's
runtime images, as a cluster that side-loaded them would); the fake registry serves every image
the test did not make unpullable. :func:`pull_step` is the kubelet's decision, a pure function:
``Never`` uses what is present or fails with ``ErrImageNeverPull``; ``IfNotPresent`` pulls what is
absent; ``Always`` pulls every time, so it fails on an unpullable image even when it is present.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from enum import Enum

from airflow_ais_etl.etl.runtimes import is_runtime_image

__all__ = ["ImageCatalog", "ImageSource", "PullStep", "pull_step"]

ImageSource = Iterable[str] | Callable[[str], bool] | None
"""A set of image names, or a predicate on one (None: the default of the parameter it is given to)."""


class PullStep(str, Enum):
    """What the kubelet does with a container's image before starting it."""

    USE_PRESENT = "UsePresent"
    PULL = "Pull"
    PULL_FAILS = "PullFails"
    NEVER_PULL = "ErrImageNeverPull"

    def __str__(self) -> str:
        return self.value


def pull_step(policy: str, *, present: bool, pullable: bool) -> PullStep:
    """Decide what ``imagePullPolicy`` (Always, IfNotPresent, Never) does with one image."""
    if policy == "Never":
        return PullStep.USE_PRESENT if present else PullStep.NEVER_PULL
    if policy == "IfNotPresent" and present:
        return PullStep.USE_PRESENT
    return PullStep.PULL if pullable else PullStep.PULL_FAILS


def _predicate(source: ImageSource, default: Callable[[str], bool]) -> Callable[[str], bool]:
    if source is None:
        return default
    if callable(source):
        return source
    names = frozenset(source)
    return names.__contains__


class ImageCatalog:
    """Which images each node holds, and which the fake registry serves (thread-safe).

    :param preloaded: images every node has from the start (default: the project's runtime images)
    :param registry: images the registry serves (default: every image)
    """

    def __init__(self, preloaded: ImageSource = None, registry: ImageSource = None) -> None:
        self._preloaded = _predicate(preloaded, is_runtime_image)
        self._registry = _predicate(registry, lambda _image: True)
        self._lock = threading.Lock()
        self._pulled: dict[str, set[str]] = {}
        self._removed: set[str] = set()
        self._unpullable: set[str] = set()

    def present(self, node: str, image: str) -> bool:
        """Tell whether ``node`` holds ``image`` (preloaded and not removed, or pulled there)."""
        with self._lock:
            if image in self._pulled.get(node, set()):
                return True
            return image not in self._removed and self._preloaded(image)

    def pullable(self, image: str) -> bool:
        """Tell whether the registry serves ``image``."""
        with self._lock:
            return image not in self._unpullable and self._registry(image)

    def pulled(self, node: str, image: str) -> None:
        """Remember that ``image`` was pulled onto ``node``."""
        with self._lock:
            self._pulled.setdefault(node, set()).add(image)

    def remove(self, image: str) -> None:
        """Delete ``image`` from every node (as image garbage collection would)."""
        with self._lock:
            self._removed.add(image)
            for images in self._pulled.values():
                images.discard(image)

    def set_pullable(self, image: str, pullable: bool) -> None:
        """Make the registry refuse ``image`` (or serve it again)."""
        with self._lock:
            if pullable:
                self._unpullable.discard(image)
            else:
                self._unpullable.add(image)

    def unpullable(self) -> set[str]:
        """Return the images the registry was told to refuse."""
        with self._lock:
            return set(self._unpullable)

    def node_images(self, node: str) -> list[str]:
        """Return the images pulled onto ``node`` (preloaded ones are not enumerable)."""
        with self._lock:
            return sorted(self._pulled.get(node, set()))

    def reset(self) -> None:
        """Forget every pull, removal and refusal: back to the configured start."""
        with self._lock:
            self._pulled.clear()
            self._removed.clear()
            self._unpullable.clear()
