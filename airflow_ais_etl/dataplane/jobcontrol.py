"""A thread-safe handle to abort a running offline job (``dataplane.engine``) from any thread."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["JobControl"]


class JobControl:
    """A thread-safe handle to abort a running job (task kill, Ctrl-C) from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.cause: str | None = None
        self.stop_pods = False
        self._wake: Callable[[], object] | None = None

    def abort(self, cause: str, *, stop_pods: bool = False, replace: bool = False) -> None:
        """Abort the job with ``cause``; ``stop_pods`` also stops the ETL (membership changes).

        The first cause stays unless ``replace`` (the job learnt that an earlier event caused it).
        """
        with self._lock:
            if self.cause is not None and not replace:
                return
            self.cause, self.stop_pods = cause, stop_pods
            wake = self._wake
        if wake:
            wake()

    def _bind(self, wake: Callable[[], object]) -> None:
        with self._lock:
            self._wake = wake
            pending = self.cause is not None
        if pending:
            wake()
