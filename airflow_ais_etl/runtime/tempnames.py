"""Names of in-progress writes: unique without randomness per file, and telling who wrote them.

A temp file is named ``<TEMP_PREFIX><host>-<pid>-<tag><counter>-<basename>`` so that a cleanup can
tell a file abandoned by a dead process on this host from one another writer is still filling.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import socket

from airflow_ais_etl.runtime.procutil import pid_exists

__all__ = ["TEMP_PREFIX", "abandoned", "temp_name"]

TEMP_PREFIX = ".ais-etl-tmp-"
"""File-name prefix of in-progress writes; listings skip them, a bucket's ``clean_partials`` removes them."""

_NAME_MAX = 255
_HOST_TAG = hashlib.sha1(socket.gethostname().encode(), usedforsecurity=False).hexdigest()[:8]


class _TempNames:
    """Temp-file names unique per host, process and write: a random tag per process plus a counter.

    Cheaper than fresh randomness per file (no system call); reset in a forked child.
    """

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.head = f"{TEMP_PREFIX}{_HOST_TAG}-{os.getpid()}-{secrets.token_hex(4)}"
        self.counter = itertools.count()


_TEMP_NAMES = _TempNames()


def temp_name(basename: str) -> str:
    """Build a temp-file name that says which host and process own it."""
    head = f"{_TEMP_NAMES.head}{next(_TEMP_NAMES.counter):x}-"
    if len(basename) + len(head) <= _NAME_MAX and basename.isascii():
        return head + basename
    room = _NAME_MAX - len(head.encode())
    tail = basename.encode()[:room].decode(errors="ignore")
    return head + tail


def abandoned(filename: str, mtime: float, stale_after: float, now: float) -> bool:
    """Tell whether a temp file belongs to a dead local process or has not changed for a while."""
    parts = filename[len(TEMP_PREFIX) :].split("-", 3)
    if len(parts) == 4 and parts[0] == _HOST_TAG and parts[1].isdigit():
        pid = int(parts[1])
        if pid != os.getpid() and not pid_exists(pid):
            return True
    return now - mtime > stale_after
