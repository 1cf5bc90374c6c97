"""One worker process: an event loop for small whole-object requests, a thread for everything else.

The loop owns every idle keep-alive connection. It reads request heads and small ``Content-Length``
bodies itself and answers a whole-object transform (or a health probe) inline: no thread hand-off,
no GIL contention, no context switch per request. Any other request (streamed transforms, large or
chunked bodies, callbacks, io commands, ``Expect: 100-continue``) moves with its buffered bytes to a
thread that uses blocking sockets, so a slow transfer holds up only its own connection; the thread
gives the connection back to the loop once it is idle again. Several workers share the listening
socket, so CPU-bound transforms use every core.
"""

from __future__ import annotations

import collections
import contextlib
import os
import selectors
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING

from airflow_ais_etl.etl.constants import ARG_BYTES, ARG_FQN
from airflow_ais_etl.runtime.connthreads import (
    IDLE_TIMEOUT_SECONDS,
    ConnectionRegistry,
    answer,
    read_head,
    serve_in_thread,
    tune_accepted,
)
from airflow_ais_etl.runtime.filetransport import serve_files
from airflow_ais_etl.runtime.handlers import BATCH_KEY
from airflow_ais_etl.runtime.http1.batchwire import ALONE
from airflow_ais_etl.runtime.httpserver import RECV_SIZE, Connection
from airflow_ais_etl.runtime.threadreuse import ReusedThreads
from airflow_ais_etl.runtime.timebudget import TimeBudget

if TYPE_CHECKING:
    import logging
    from types import FrameType

    from airflow_ais_etl.runtime.balance import LoadBoard
    from airflow_ais_etl.runtime.handlers import App
    from airflow_ais_etl.runtime.httpserver import Request

DEFER_LIMIT = 5
DEFER_SECONDS = 0.002
INLINE_BODY_LIMIT = 256 * 1024  # larger bodies are read by a connection thread
IDLE_SWEEP_SECONDS = 10.0
SLOW_INLINE_SECONDS = 0.005
"""An inline answer this slow, not counting the loop's waits for a CPU, sends PUTs to threads for a while."""
THREADED_SPELL_SECONDS = 1.0
"""How long PUTs go to threads after a slow answer, and how long answers are measured after one that
took as long but may have waited for a CPU."""
_NO_WAIT = socket.MSG_DONTWAIT


def inline_capable(app: App) -> bool:
    """Tell whether PUT requests run a whole-object transform on bytes or a local file (no I/O wait)."""
    cfg = app.cfg
    return not cfg.is_io and cfg.chunk_size == 0 and cfg.arg_type in (ARG_BYTES, ARG_FQN)


class _Slot:
    """Event-loop state of one connection: a parsed head waiting for its body, unsent output."""

    __slots__ = ("conn", "last_read", "pending", "req")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.last_read = time.monotonic()
        self.req: Request | None = None
        self.pending: list[memoryview] = []


class Worker:
    """The per-process event loop: accept, read, answer small requests inline, hand the rest to threads."""

    def __init__(
        self,
        lsock: socket.socket,
        app: App,
        grace_seconds: float,
        log: logging.Logger,
        board: LoadBoard | None,
        slot: int,
    ) -> None:
        self.lsock = lsock
        self.app = app
        self.grace_seconds = grace_seconds
        self.log = log
        self.board = board
        self.board_slot = slot
        self.inline_put = inline_capable(app)
        self.threaded_until = 0.0  # PUTs go to threads until then (the transform proved slow)
        self.measured_until = 0.0  # inline answers leave out the loop's waits for a CPU until then
        on_count = (lambda n: board.set(slot, n)) if board is not None else None
        self.registry = ConnectionRegistry(on_count)
        self.threads = ReusedThreads("ais-etl-conn")
        self.stop = threading.Event()
        self.sel = selectors.DefaultSelector()
        self.slots: dict[Connection, _Slot] = {}
        self.returned: collections.deque[Connection] = collections.deque()
        self.current: Connection | None = None  # answered inline right now
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    # ------------------------------------------------------------------ main loop

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()
        self.registry.stopping = True
        current = self.current
        if current is not None:
            current.close_after = True

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT, then finish in-flight requests; return the exit code."""
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        lsock = self.lsock
        sel = self.sel
        lsock.setblocking(False)
        sel.register(lsock, selectors.EVENT_READ)
        sel.register(self.wake_r, selectors.EVENT_READ)
        deferred = 0
        board = self.board
        next_sweep = time.monotonic() + IDLE_SWEEP_SECONDS
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if now >= next_sweep:
                    self._sweep(now)
                    next_sweep = now + IDLE_SWEEP_SECONDS
                for key, events in sel.select(next_sweep - now):
                    data = key.data
                    if data is not None:
                        self._on_ready(data, events)
                    elif key.fileobj is lsock:
                        if (
                            board is not None
                            and deferred < DEFER_LIMIT
                            and board.should_defer(self.board_slot)
                        ):
                            deferred += 1
                            time.sleep(DEFER_SECONDS)
                            continue
                        deferred = 0
                        self._accept()
                    else:
                        self._on_wake()
            sel.unregister(lsock)
            lsock.close()
            return self._drain()
        finally:
            sel.close()

    def _drain(self) -> int:
        """Graceful stop: close idle connections, finish the busy ones within the grace period."""
        deadline = time.monotonic() + self.grace_seconds
        self.registry.stop()
        for slot in list(self.slots.values()):
            if slot.req is None and not slot.pending and not slot.conn.buf:
                self._close(slot)
            else:
                slot.conn.close_after = True
        while self.slots and time.monotonic() < deadline:
            for key, events in self.sel.select(min(0.1, max(0.0, deadline - time.monotonic()))):
                if key.data is not None:
                    self._on_ready(key.data, events)
                else:
                    self._on_wake()
        for slot in list(self.slots.values()):
            self._close(slot)
        if not self.registry.wait_empty(max(0.0, deadline - time.monotonic())):
            self.log.warning(
                "grace period of %.1fs over with requests still in flight; exiting", self.grace_seconds
            )
        return 0

    def _sweep(self, now: float) -> None:
        """Close connections that sent nothing for ``IDLE_TIMEOUT_SECONDS`` (idle or stuck peers)."""
        for slot in list(self.slots.values()):
            if now - slot.last_read > IDLE_TIMEOUT_SECONDS:
                self._close(slot)

    def _accept(self) -> None:
        try:
            sock, _ = self.lsock.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it
        except OSError as exc:  # e.g. out of file descriptors: back off briefly
            self.log.error("accept failed: %s", exc)
            time.sleep(0.05)
            return
        tune_accepted(sock)
        conn = Connection(sock)
        self.registry.add(conn)
        self._adopt(conn)

    def _adopt(self, conn: Connection) -> None:
        slot = _Slot(conn)
        self.slots[conn] = slot
        self.sel.register(conn.sock, selectors.EVENT_READ, slot)
        if conn.buf:
            self._process(slot)

    def give_back(self, conn: Connection) -> None:
        """Return an idle connection from a thread to the loop (thread-safe)."""
        self.returned.append(conn)
        with contextlib.suppress(OSError):
            os.write(self.wake_w, b"\0")

    def _on_wake(self) -> None:
        with contextlib.suppress(OSError):
            os.read(self.wake_r, 512)
        returned = self.returned
        while returned:
            conn = returned.popleft()
            if self.stop.is_set():
                conn.close()
                self.registry.remove(conn)
            else:
                self._adopt(conn)

    # ------------------------------------------------------------------ per connection

    def _close(self, slot: _Slot) -> None:
        conn = slot.conn
        if self.slots.pop(conn, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(conn.sock)
        conn.close()
        self.registry.remove(conn)

    def _on_ready(self, slot: _Slot, events: int) -> None:
        if slot.pending:
            if events & selectors.EVENT_WRITE:
                self._flush(slot)
            return
        conn = slot.conn
        try:
            data = conn.sock.recv(RECV_SIZE, _NO_WAIT)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(slot)
            return
        if not data:
            self._close(slot)  # peer closed: idle, or gone in the middle of a request
            return
        conn.buf += data
        slot.last_read = time.monotonic()
        self._process(slot)

    def _process(self, slot: _Slot) -> None:
        """Answer every complete request buffered on the connection, or hand it to a thread."""
        conn = slot.conn
        buf = conn.buf
        while not slot.pending:
            req = slot.req
            if req is None:
                while buf[:2] == b"\r\n":
                    del buf[:2]
                if not buf:
                    return
                if not conn.head_buffered():
                    return  # wait for the rest of the head
                if self.stop.is_set():
                    conn.close_after = True
                conn.out = []
                req = read_head(conn, self.log)
                out, conn.out = conn.out, None
                if req is None:
                    slot.pending = [memoryview(b) for b in out if len(b)]
                    self._finish(slot)
                    return
                length = req.body.length
                inline = (
                    length is not None
                    and length <= INLINE_BODY_LIMIT
                    and "expect" not in req.headers
                    and (
                        req.path == "/health"
                        or (self.inline_put and req.method == "PUT" and self._put_inline(req))
                    )
                )
                if not inline:
                    self._to_thread(slot, req)
                    return
                slot.req = req
            length = req.body.length
            if length is not None and len(buf) < length:
                return  # wait for the rest of the body
            slot.req = None
            conn.out = []
            self.current = conn
            started = time.monotonic()
            measured = TimeBudget(SLOW_INLINE_SECONDS) if started < self.measured_until else None
            try:
                keep = answer(self.app, conn, req, self.log)
            finally:
                self.current = None
                out, conn.out = conn.out, None
            took = time.monotonic() - started
            if took > SLOW_INLINE_SECONDS:
                self._took_long(started + took, measured)
            slot.pending = [memoryview(b) for b in out if len(b)]
            if not keep:
                conn.close_after = True
            if not self._finish(slot):
                return

    def _took_long(self, ended: float, measured: TimeBudget | None) -> None:
        """Send PUTs to threads for a while if an answer that ended at ``ended`` was slow by itself:
        a slow transform would hold up every other connection of this worker.

        ``measured``: the answer's budget of :data:`SLOW_INLINE_SECONDS` without the loop's waits for
        a CPU, if it was measured. The first long answer only starts a spell of measured ones: on a
        busy machine a scheduler slice in the middle of a 20 us echo took as long, and sent a worker's
        PUTs to threads for a second, up to a quarter slower (bench/README, ninth session);
        measuring every answer costs a system call each.
        """
        until = ended + THREADED_SPELL_SECONDS
        if measured is None:
            self.measured_until = until
        elif measured.spent():
            self.threaded_until = until
            self.measured_until = 0.0

    def _put_inline(self, req: Request) -> bool:
        batch = req.headers.get(BATCH_KEY)
        if batch is not None and (batch == ALONE or not self.app.batches_proven):
            return False  # a batch of unproven speed, or an object of a failed batch: in a thread
        until = self.threaded_until
        return not until or time.monotonic() >= until

    def _finish(self, slot: _Slot) -> bool:
        """Send the collected answer; True if the connection stays open and has nothing pending."""
        conn = slot.conn
        if conn.sock.fileno() < 0:  # aborted
            self._close(slot)
            return False
        if slot.pending:
            self._flush(slot)
            if slot.pending:
                return False
        if conn.close_after:
            self._close(slot)
            return False
        return conn in self.slots

    def _flush(self, slot: _Slot) -> None:
        pending = slot.pending
        conn = slot.conn
        was_blocked = self.sel.get_key(conn.sock).events & selectors.EVENT_WRITE
        try:
            while pending:
                sent = conn.sock.sendmsg(pending, (), _NO_WAIT)
                while sent:
                    first = len(pending[0])
                    if sent >= first:
                        sent -= first
                        pending.pop(0)
                    else:
                        pending[0] = pending[0][sent:]
                        sent = 0
        except (BlockingIOError, InterruptedError):
            if not was_blocked:
                self.sel.modify(conn.sock, selectors.EVENT_WRITE, slot)
            return
        except OSError:
            pending.clear()
            self._close(slot)
            return
        if was_blocked:
            self.sel.modify(conn.sock, selectors.EVENT_READ, slot)
            if conn.close_after:
                self._close(slot)
            else:
                self._process(slot)

    def _to_thread(self, slot: _Slot, req: Request) -> None:
        conn = slot.conn
        del self.slots[conn]
        self.sel.unregister(conn.sock)
        self.registry.to_thread(conn)
        self.threads.run(serve_in_thread, self.app, conn, req, self.registry, self.log, self.give_back)


def run_worker(
    lsock: socket.socket,
    app: App,
    grace_seconds: float,
    log: logging.Logger,
    board: LoadBoard | None = None,
    slot: int = 0,
    *,
    file_lsock: socket.socket | None = None,
) -> int:
    """Accept and serve until SIGTERM/SIGINT, then finish in-flight requests; return the exit code.

    With ``file_lsock``, a thread also serves objects named on the file socket (``runtime.filetransport``).

    With a ``board``, a worker that holds more connections than another one waits up to
    ``DEFER_LIMIT`` polls before accepting, so a less loaded worker gets the connection first.
    """
    if file_lsock is not None:
        serve_files(file_lsock, app, log, slot, app.cfg.workers)
    return Worker(lsock, app, grace_seconds, log, board, slot).run()
