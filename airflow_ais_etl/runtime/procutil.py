"""Process helpers: tie a child's life to its parent so no server process is ever orphaned; tell a live pid."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def pid_exists(pid: int) -> bool:
    """Tell whether a process ``pid`` exists (one of another user's counts; a zombie too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_prctl = _load_prctl()


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent (thread) exits; False if unsupported.

    Call it in the child right after fork. Linux delivers the signal when the *thread* that forked
    exits, so fork from a thread that outlives the child.
    """
    if _prctl is None:
        return False
    return _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def kill_with_parent_preexec() -> None:
    """``preexec_fn`` for subprocesses: SIGKILL the child if the spawning thread goes away."""
    die_with_parent(signal.SIGKILL)
