"""A tiny supervisor that runs one container's program and records how it ended.

Like a container shim: the pod runner starts this detached; it starts the program, writes the
program's pid, forwards SIGTERM/SIGINT to it, and writes its exit code (negative = signal) when
it ends, so that any process can later learn that ``pod of t1 exited with code -9``.
Usage: ``python -m airflow_ais_etl.cluster.local.podshim STATE_DIR -- PROGRAM [ARGS...]``.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from pathlib import Path

from airflow_ais_etl.cluster.private import private_dir, write_private


def _write_atomic(path: Path, text: str) -> None:
    write_private(path, text)


def main(argv: list[str]) -> int:
    """Run the program given after ``--`` and record its pid and exit code in the state dir."""
    if len(argv) < 3 or argv[1] != "--":
        print("usage: podshim STATE_DIR -- PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    state = Path(argv[0])
    private_dir(state)
    try:
        child = subprocess.Popen(argv[2:], stdin=subprocess.DEVNULL)
    except OSError as exc:
        print(f"cannot start {argv[2]!r}: {exc}", file=sys.stderr, flush=True)
        _write_atomic(state / "exit_code", "127")
        return 127
    _write_atomic(state / "pid", str(child.pid))

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    _write_atomic(state / "exit_code", str(code))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
