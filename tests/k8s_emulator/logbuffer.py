"""Collect one container instance's log file into timestamped lines that log requests serve."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class LogBuffer:
    """Lines of one container run, stamped when the kubelet first saw them.

    :param path: the log file the pod runner writes
    :param offset: where this container run starts in the file (restarts append)
    """

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset
        self.lines: list[tuple[float, bytes]] = []
        self.finished = False
        self.cond = threading.Condition()
        self._partial = b""

    def pump(self) -> None:
        """Read what was appended to the file since the last call."""
        with self.cond:
            if self.finished:
                return
            try:
                with open(self.path, "rb") as f:
                    f.seek(self.offset)
                    data = f.read()
            except OSError:
                return
            if not data:
                return
            self.offset += len(data)
            now = time.time()
            data = self._partial + data
            *complete, self._partial = data.split(b"\n")
            for line in complete:
                self.lines.append((now, line + b"\n"))
            if complete:
                self.cond.notify_all()

    def finish(self) -> None:
        """Collect the rest of the file and end follow streams."""
        self.pump()
        with self.cond:
            if self.finished:
                return
            if self._partial:
                self.lines.append((time.time(), self._partial))
                self._partial = b""
            self.finished = True
            self.cond.notify_all()


def file_size(path: Path) -> int:
    """Return the size of ``path`` (0 when missing)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0
