"""The program: check the configuration and user code, bind, fork workers, handle signals.

Exit codes: 0 after a SIGTERM/SIGINT shutdown, 2 for a bad environment, 3 for user code that
cannot serve (import error, missing function, wrong arity), 4 when the address cannot be bound,
1 when workers keep dying.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import sys
import time
import traceback
from typing import TYPE_CHECKING

from airflow_ais_etl.runtime.balance import LoadBoard
from airflow_ais_etl.runtime.collector import quiet_before_fork
from airflow_ais_etl.runtime.config import ConfigError, RuntimeConfig, load_config
from airflow_ais_etl.runtime.filetransport import listen
from airflow_ais_etl.runtime.filewire import FILE_SOCKET_ENV
from airflow_ais_etl.runtime.handlers import App
from airflow_ais_etl.runtime.procutil import die_with_parent
from airflow_ais_etl.runtime.server import run_worker
from airflow_ais_etl.runtime.usercode import UserCodeError, load_transform

if TYPE_CHECKING:
    from types import FrameType

    from airflow_ais_etl.runtime.usercode import Transform

EXIT_CONFIG = 2
EXIT_USER_CODE = 3
EXIT_BIND = 4
EXIT_WORKERS_FAILING = 1

_HANDLED_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
_RESPAWN_WINDOW = 10.0
_KILL_MARGIN = 1.0


def setup_logging() -> logging.Logger:
    """Log to stderr, one line per event, with the process id (workers share the stream)."""
    log = logging.getLogger("airflow_ais_etl.runtime")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log


def bind(host: str, port: int) -> socket.socket:
    """Create the listening socket shared by all workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=1024)


def main() -> int:
    """Run the server until a signal stops it; return the process exit code."""
    log = setup_logging()
    try:
        cfg = load_config(os.environ)
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return EXIT_CONFIG
    transform = None
    if not cfg.is_io:
        try:
            transform = load_transform(
                cfg.code_file, cfg.module_name, cfg.func_name, streaming=cfg.chunk_size > 0
            )
        except UserCodeError as exc:
            log.error("user code error: %s", exc)
            return EXIT_USER_CODE
    try:
        lsock = bind(cfg.host, cfg.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", cfg.host, cfg.port, exc)
        return EXIT_BIND
    host, port = lsock.getsockname()[:2]
    log.info(
        "runtime ready: comm=%s arg=%r chunk_size=%d workers=%d listening on %s:%d",
        cfg.comm_type,
        cfg.arg_type,
        cfg.chunk_size,
        cfg.workers,
        host,
        port,
    )
    app, file_sock = _with_file_socket(cfg, transform, log)
    quiet_before_fork()  # (runtime.collector: the workers collect less often, never start-up's objects)
    return Supervisor(cfg, lsock, app, log, file_sock).run()


def _with_file_socket(
    cfg: RuntimeConfig, transform: Transform | None, log: logging.Logger
) -> tuple[App, socket.socket | None]:
    """Return the app, and the file socket (``runtime.filetransport``) when the backend asks for one and
    the transform can take it; a socket that cannot be bound leaves the pod on HTTP alone."""
    path = os.environ.get(FILE_SOCKET_ENV, "")
    app = App(cfg, transform, log, files=bool(path))
    if not app.files:
        return app, None
    try:
        sock = listen(path)
    except OSError as exc:
        log.warning("no file transport: cannot listen on %s: %s", path, exc)
        return App(cfg, transform, log), None
    log.info("file transport on %s", path)
    return app, sock


class Supervisor:
    """Parent process: keeps ``cfg.workers`` children serving, stops them gracefully on a signal."""

    def __init__(
        self,
        cfg: RuntimeConfig,
        lsock: socket.socket,
        app: App,
        log: logging.Logger,
        file_sock: socket.socket | None = None,
    ) -> None:
        self.cfg = cfg
        self.lsock: socket.socket | None = lsock
        self.file_sock = file_sock
        self.app = app
        self.log = log
        self.workers: dict[int, int] = {}  # pid -> load-board slot
        self.board = LoadBoard(cfg.workers)
        self.stopping = False
        self.pid = os.getpid()
        self._deaths: list[float] = []
        self._fds: tuple[int, ...] = ()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stopping = True

    def run(self) -> int:
        """Fork the workers and supervise them; return the exit code."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        for sig in _HANDLED_SIGNALS:
            signal.signal(sig, self._on_signal)
        self._fds = (wake_r, wake_w)
        for slot in range(self.cfg.workers):
            self._spawn(slot)
        deadline: float | None = None
        code = 0
        while self.workers:
            select.select([wake_r], [], [], 0.2 if deadline is not None else 1.0)
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 512)
            failed = self._reap()
            if failed and not self.stopping:
                if self._too_many_deaths():
                    self.log.error("workers keep dying; shutting down")
                    self.stopping = True
                    code = EXIT_WORKERS_FAILING
                else:
                    for slot in failed:
                        self._spawn(slot)
            if self.stopping and deadline is None:
                deadline = time.monotonic() + self.cfg.grace_seconds + _KILL_MARGIN
                self.log.info("stopping: %d worker(s) finish in-flight requests", len(self.workers))
                self._close_listener()
                self._signal_workers(signal.SIGTERM)
            if deadline is not None and time.monotonic() > deadline and self.workers:
                self.log.warning("grace period over: killing %d worker(s)", len(self.workers))
                self._signal_workers(signal.SIGKILL)
                deadline = time.monotonic() + 5.0
        self._close_listener()
        self.log.info("stopped")
        return code

    def _close_listener(self) -> None:
        if self.lsock is not None:
            self.lsock.close()
            self.lsock = None
        if self.file_sock is not None:
            with contextlib.suppress(OSError):
                os.unlink(os.environ.get(FILE_SOCKET_ENV, ""))
            self.file_sock.close()
            self.file_sock = None

    def _signal_workers(self, sig: int) -> None:
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _reap(self) -> list[int]:
        """Collect exited workers; return the slots of those that exited unexpectedly."""
        failed: list[int] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return failed
            if pid == 0:
                return failed
            slot = self.workers.pop(pid, None)
            if slot is None:
                continue
            self.board.set(slot, 0)
            if not self.stopping:
                failed.append(slot)
                self._deaths.append(time.monotonic())
                self.log.error("worker %d exited unexpectedly (%s)", pid, _describe_status(status))

    def _too_many_deaths(self) -> bool:
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < _RESPAWN_WINDOW]
        return len(self._deaths) > 3 * self.cfg.workers

    def _spawn(self, slot: int) -> None:
        lsock = self.lsock
        if lsock is None:
            return
        # Block signals across fork so the child never runs the parent's handlers.
        signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED_SIGNALS)
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED_SIGNALS)
            self.workers[pid] = slot
            return
        code = 1
        try:
            die_with_parent(signal.SIGKILL)
            if os.getppid() != self.pid:
                os._exit(1)
            signal.set_wakeup_fd(-1)
            for fd in self._fds:
                os.close(fd)
            for sig in _HANDLED_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)  # until the worker installs its own: stop = exit
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _HANDLED_SIGNALS)
            code = run_worker(
                lsock, self.app, self.cfg.grace_seconds, self.log, self.board, slot, file_lsock=self.file_sock
            )
        except BaseException:
            traceback.print_exc()
        finally:
            try:
                sys.stderr.flush()
                sys.stdout.flush()
            finally:
                os._exit(code)


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
