"""The lifecycle lock of one local home: init, start, stop, rm and membership changes take turns.

Why a file lock: the commands run in different processes (CLI calls, Airflow tasks), and two of
them checking "is it running?" and then starting pods at the same moment would both start pods,
the later one overwriting the earlier one's records and orphaning its processes. ``flock`` on a
file in the home serialises them across processes, and the kernel releases it when the holder dies
(``kill -9`` included), so a crash never leaves the home locked.

Within one process the lock is re-entrant (a service call that stops pods may call the backend,
which takes it again) and shared by every backend object of the same home; threads take turns.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING

from airflow_ais_etl.cluster.private import private_dir

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["LOCK_NAME", "HomeLock", "home_lock"]

LOCK_NAME = "lifecycle.lock"


class HomeLock:
    """An exclusive ``flock`` on ``<home>/lifecycle.lock``, re-entrant within this process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mutex = threading.RLock()
        self._depth = 0
        self._file: IO[bytes] | None = None

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock for the block (waits for other processes and threads)."""
        with self._mutex:
            if self._depth == 0:
                self._file = self._acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._file is not None:
                    self._file.close()  # closing the descriptor releases the flock
                    self._file = None

    def _acquire(self) -> IO[bytes]:
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        f = os.fdopen(fd, "r+b")
        try:
            fcntl.flock(f, fcntl.LOCK_EX)
        except BaseException:
            f.close()
            raise
        return f


_LOCKS: dict[str, HomeLock] = {}
_LOCKS_GUARD = threading.Lock()


def home_lock(home: Path) -> HomeLock:
    """Return the one :class:`HomeLock` of ``home`` in this process."""
    key = os.path.realpath(home)
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = HomeLock(Path(key) / LOCK_NAME)
        return lock
