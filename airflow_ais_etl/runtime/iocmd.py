"""Run the io:// command for one request: body on stdin, stdout as the answer, stderr to the log.

Response policy: stdout is buffered until the command exits as long as it stays under
``buffer_limit`` bytes; then the answer is 200 with ``Content-Length`` (exit 0) or 500 with the tail of
stderr (non-zero exit). Larger output is streamed with chunked encoding as it is produced, and a
non-zero exit then resets the connection without the final chunk, so the client sees an error.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections import deque
from typing import IO, TYPE_CHECKING

from airflow_ais_etl.runtime.httpserver import BodyReader, ClientGone, Connection, HttpError
from airflow_ais_etl.runtime.procutil import kill_with_parent_preexec

if TYPE_CHECKING:
    import logging

BUFFER_LIMIT = 1 << 20
_PIPE_READ = 256 * 1024
_TAIL_LINES = 40
_TAIL_BYTES = 8192


class StreamAborted(Exception):
    """The response was cut off on purpose (already logged); close the connection."""


class _StderrTail:
    """Copy a child's stderr to our log line by line and remember the last lines."""

    def __init__(self, stream: IO[bytes], prefix: str) -> None:
        self._stream = stream
        self._prefix = prefix
        self._lines: deque[bytes] = deque(maxlen=_TAIL_LINES)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        out = sys.stderr.buffer if hasattr(sys.stderr, "buffer") else None
        for line in self._stream:
            self._lines.append(line[-_TAIL_BYTES:])
            if out is not None:
                try:
                    out.write(
                        self._prefix.encode() + line
                        if line.endswith(b"\n")
                        else self._prefix.encode() + line + b"\n"
                    )
                    out.flush()
                except (OSError, ValueError):
                    out = None
        self._stream.close()

    def text(self) -> str:
        self._thread.join()
        data = b"".join(self._lines)[-_TAIL_BYTES:]
        return data.decode("utf-8", "replace").rstrip()


class _Feeder:
    """Copy the request body to the child's stdin; remember a client failure."""

    def __init__(self, body: BodyReader, stdin: IO[bytes]) -> None:
        self._body = body
        self._stdin = stdin
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                data = self._body.read(_PIPE_READ)
                if not data:
                    break
                try:
                    self._stdin.write(data)
                except (BrokenPipeError, ValueError):
                    break  # the command stopped reading; the server drains the rest
        except (ClientGone, HttpError) as exc:
            self.error = exc
        finally:
            with contextlib.suppress(OSError):
                self._stdin.close()

    def join(self) -> None:
        self._thread.join()


def run_io_command(
    argv: list[str],
    body: BodyReader,
    conn: Connection,
    log: logging.Logger,
    obj_path: str,
    buffer_limit: int = BUFFER_LIMIT,
) -> None:
    """Run ``argv`` for one request and answer on ``conn`` (see the module docstring for the policy).

    :raises StreamAborted: the answer was cut off after streaming began, or the client failed.
    """
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
        preexec_fn=kill_with_parent_preexec,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    tail = _StderrTail(proc.stderr, f"io[{proc.pid}] ")
    feeder = _Feeder(body, proc.stdin)
    pending = bytearray()
    streaming = False
    try:
        while True:
            data = proc.stdout.read(_PIPE_READ)
            if not data:
                break
            if streaming:
                conn.send_chunk(data)
                continue
            pending += data
            if len(pending) > buffer_limit:
                conn.start_chunked()
                streaming = True
                conn.send_chunk(pending)
                pending = bytearray()
    except ClientGone:
        proc.kill()
        raise
    finally:
        rc = proc.wait()
        feeder.join()
        proc.stdout.close()
    stderr_tail = tail.text()
    if feeder.error is not None:
        log.error("PUT %s: reading the request body failed: %s", obj_path, feeder.error)
        conn.abort()
        raise StreamAborted(str(feeder.error))
    if rc != 0:
        message = f"io command {argv!r} exited with code {rc} for {obj_path!r}"
        log.error("PUT %s -> %s: %s", obj_path, "abort" if streaming else 500, message)
        if streaming:
            conn.abort()
            raise StreamAborted(message)
        conn.send_text(500, f"{message}; stderr tail:\n{stderr_tail}\n")
        return
    if streaming:
        conn.end_chunked()
    else:
        conn.send_response(200, pending)
