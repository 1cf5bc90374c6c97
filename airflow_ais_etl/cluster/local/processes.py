"""Supervise a pod's local processes: run init containers, start the rest under shims, stop them.

Each long-running container's program runs detached under a
:mod:`~airflow_ais_etl.cluster.local.podshim` that records its pid and exit code, so any process
(another Airflow task) can later learn how a container ended. Every container gets its own
process group, which :func:`stop_pod` signals as a whole.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import psutil

from airflow_ais_etl.cluster.private import PRIVATE_UMASK, open_private
from airflow_ais_etl.etl.errors import PodStartError
from airflow_ais_etl.runtime.procutil import pid_exists

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from airflow_ais_etl.cluster.local.podplan import ContainerPlan

__all__ = [
    "ContainerProcess",
    "LocalPod",
    "log_tail",
    "pid_alive",
    "process_tree",
    "run_init_containers",
    "start_containers",
    "stop_pod",
    "stop_pods",
]


@dataclass
class ContainerProcess:
    """One container's program, supervised by a shim that records its pid and exit code."""

    name: str
    state_dir: Path
    log_path: Path
    shim_pid: int = 0

    def pid(self) -> int | None:
        try:
            return int((self.state_dir / "pid").read_text())
        except (OSError, ValueError):
            return None

    def exit_code(self) -> int | None:
        """Return the program's exit code (negative: killed by that signal), None while running."""
        try:
            return int((self.state_dir / "exit_code").read_text())
        except (OSError, ValueError):
            if self.shim_pid and not pid_alive(self.shim_pid):
                return -signal.SIGKILL  # the shim itself was killed: the container is gone
            return None

    def exited_at(self) -> float | None:
        """Return when the shim recorded the exit (epoch seconds), None when it did not (yet)."""
        try:
            return os.stat(self.state_dir / "exit_code").st_mtime
        except OSError:
            return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state_dir": str(self.state_dir),
            "log_path": str(self.log_path),
            "shim_pid": self.shim_pid,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ContainerProcess:
        return cls(data["name"], Path(data["state_dir"]), Path(data["log_path"]), int(data["shim_pid"]))


@dataclass
class LocalPod:
    """A pod running as local processes."""

    name: str
    ip: str
    port: int
    workdir: Path
    containers: list[ContainerProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def exited(self) -> tuple[str, int] | None:
        """Return ``(container, exit code)`` of the first container that ended, if any."""
        for c in self.containers:
            code = c.exit_code()
            if code is not None:
                return c.name, code
        return None

    def exited_at(self) -> float | None:
        """Return when the first recorded container exit happened (None: none recorded)."""
        return min((t for c in self.containers if (t := c.exited_at()) is not None), default=None)

    def pids(self) -> list[int]:
        return [p for c in self.containers if (p := c.pid()) is not None]

    def log_text(self) -> str:
        return logs_in(self.workdir)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ip": self.ip,
            "port": self.port,
            "workdir": str(self.workdir),
            "containers": [c.to_dict() for c in self.containers],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LocalPod:
        return cls(
            data["name"],
            data["ip"],
            int(data["port"]),
            Path(data["workdir"]),
            [ContainerProcess.from_dict(c) for c in data["containers"]],
        )


def pid_alive(pid: int) -> bool:
    """Tell whether process ``pid`` runs (a zombie child of this process counts as gone)."""
    if not pid_exists(pid):
        return False
    try:  # a zombie child of ours counts as dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def log_tail(path: Path, lines: int = 20) -> str:
    """Return the last ``lines`` lines of a log file ('' when missing)."""
    try:
        data = path.read_bytes()[-65536:]
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def _pdeathsig() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _preexec(die_with_parent: bool) -> Callable[[], None] | None:
    """Return what a child runs before its program: die with this process, when asked to."""
    return _pdeathsig if die_with_parent else None


def run_init_containers(
    inits: Sequence[ContainerPlan], workdir: Path, pod_name: str, *, timeout: float, die_with_parent: bool
) -> None:
    """Run each init container to completion, in order; raise :class:`PodStartError` when one fails."""
    for init in inits:
        log_path = workdir / "logs" / f"{init.name}.log"
        code = _run_to_completion(init, log_path, timeout=timeout, die_with_parent=die_with_parent)
        if code != 0:
            tail = log_tail(log_path)
            raise PodStartError(
                f"init container {init.name!r} failed with exit code {code}:\n{tail}",
                exit_code=code,
                log_tail=tail,
                pod_name=pod_name,
            )


def _child_settings(plan: ContainerPlan, log: IO[bytes], die_with_parent: bool) -> dict[str, Any]:
    """How every container process starts: its env and cwd, no stdin, output in its private log, umask 077."""
    return {
        "env": plan.env,
        "cwd": plan.cwd,
        "stdin": subprocess.DEVNULL,
        "stdout": log,
        "stderr": subprocess.STDOUT,
        "preexec_fn": _preexec(die_with_parent),
        "umask": PRIVATE_UMASK,
    }


def _run_to_completion(plan: ContainerPlan, log_path: Path, *, timeout: float, die_with_parent: bool) -> int:
    """Run one container's program with its output in ``log_path``; return its exit code."""
    with open_private(log_path, "ab") as log:
        try:
            proc = subprocess.run(
                plan.argv, timeout=timeout, check=False, **_child_settings(plan, log, die_with_parent)
            )
        except subprocess.TimeoutExpired:
            return -signal.SIGKILL
    return proc.returncode


def start_containers(
    mains: Sequence[ContainerPlan], workdir: Path, *, die_with_parent: bool
) -> list[ContainerProcess]:
    """Start each container detached under its shim and return them (nothing waits for them here)."""
    return [_start_under_shim(main, workdir, die_with_parent=die_with_parent) for main in mains]


def _start_under_shim(plan: ContainerPlan, workdir: Path, *, die_with_parent: bool) -> ContainerProcess:
    state_dir = workdir / "state" / plan.name
    if state_dir.exists():
        shutil.rmtree(state_dir)
    log_path = workdir / "logs" / f"{plan.name}.log"
    shim_argv = [sys.executable, "-m", "airflow_ais_etl.cluster.local.podshim", str(state_dir), "--"]
    with open_private(log_path, "ab") as log:
        shim = subprocess.Popen(
            shim_argv + plan.argv, start_new_session=True, **_child_settings(plan, log, die_with_parent)
        )
    return ContainerProcess(plan.name, state_dir, log_path, shim.pid)


def stop_pod(pod: LocalPod, grace: float = 10.0) -> None:
    """Stop every container of ``pod``: SIGTERM, then SIGKILL after ``grace`` seconds. Idempotent."""
    stop_pods([pod], grace)


def stop_pods(pods: Sequence[LocalPod], grace: float = 10.0) -> None:
    """Stop several pods at once: all get SIGTERM together and share one ``grace`` deadline.

    Stopping them one after the other would make a stop (or an abort) take ``grace`` per busy pod.
    """
    groups = [c.shim_pid for pod in pods for c in pod.containers if c.shim_pid]
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_group_alive(g) for g in groups):
        _reap(groups)
        time.sleep(0.05)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    while any(_group_alive(g) for g in groups) and time.monotonic() < deadline + 5:
        _reap(groups)
        time.sleep(0.02)
    _reap(groups)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return any(pid_alive(p) for p in _group_members(pgid))


def _group_members(pgid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid:
                out.append(int(entry.name))
    return out


def _reap(pids: Sequence[int]) -> None:
    """Collect the exit status of shims this process started (only those: never other children)."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def process_tree(pod: LocalPod) -> list[psutil.Process]:
    """Return the processes of ``pod``'s containers (for metrics)."""
    out = []
    for c in pod.containers:
        with contextlib.suppress(psutil.Error):
            shim = psutil.Process(c.shim_pid)
            out.extend(shim.children(recursive=True))
    return out


def logs_in(workdir: Path) -> str:
    """Return the logs a pod wrote under ``workdir`` (its containers' in name order); they outlive it."""
    parts = []
    for path in sorted(workdir.glob("logs/*.log")):
        with contextlib.suppress(OSError):
            parts.append(path.read_text(errors="replace"))
    return "".join(parts)
