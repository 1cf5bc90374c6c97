"""Racing lifecycle commands from separate processes: exactly one pod per target, nothing after stop.

Several ``ais-etl`` processes are started together on one home, as a careless user (or two
Airflow task retries) would; afterwards the pod records, the live processes and the listening
sockets are checked, not only the commands' exit codes.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import psutil
import pytest

from airflow_ais_etl.cluster.local.backend import LocalBackend
from tests.local.conftest import UPPER, processes_under

if TYPE_CHECKING:
    from pathlib import Path

LOWER = "def transform(data):\n    return data.lower()\n"
RACERS = 4


def _cli(home: Path, *argv: str) -> list[str]:
    return [sys.executable, "-m", "airflow_ais_etl.cli", "--home", str(home), *argv]


def _race(commands: list[list[str]]) -> list[tuple[int, str]]:
    """Start every command at once (each waits for one byte on stdin); return (rc, stderr)."""
    gate_r, gate_w = os.pipe()
    barrier = "import os, sys; os.read(0, 1); os.execv(sys.argv[1], sys.argv[1:])"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", barrier, *cmd],
            stdin=gate_r,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cmd in commands
    ]
    os.close(gate_r)
    os.write(gate_w, b"x" * len(procs))
    os.close(gate_w)
    out = []
    for p in procs:
        _, err = p.communicate(timeout=120)
        out.append((p.returncode, err))
    return out


def _pod_processes(home: Path) -> list[psutil.Process]:
    """Return the live pod processes (shims and their programs) started under ``home``."""
    return [
        p
        for p in processes_under(home)
        if "podshim" in " ".join(p.cmdline()) or p.cwd().startswith(str(home / "etls"))
    ]


def _listening_pids() -> set[int]:
    return {c.pid for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.pid}


def _pod_pids(home: Path) -> set[int]:
    procs = _pod_processes(home)
    return {p.pid for p in procs} | {c.pid for p in procs for c in p.children(recursive=True)}


@pytest.mark.integration
@pytest.mark.parametrize("trial", range(2))
def test_racing_identical_inits_leave_one_pod_per_target_and_stop_ends_all(
    home: Path, tmp_path: Path, trial: int
) -> None:
    code = tmp_path / "upper.py"
    code.write_text(UPPER)
    init = _cli(home, "init", "code", "--name", "race-etl", "--from-file", str(code))
    results = _race([init] * RACERS)
    assert [rc for rc, _ in results] == [0] * RACERS, [err for _, err in results]
    backend = LocalBackend(home)
    endpoints = backend.endpoints("race-etl")
    assert sorted(e.target_id for e in endpoints) == ["t1", "t2"]
    # exactly the recorded pods run: one shim per target, nothing orphaned by a losing racer
    shims = [p for p in _pod_processes(home) if "podshim" in " ".join(p.cmdline())]
    assert len(shims) == 2, [p.cmdline() for p in shims]
    stop = [
        _cli(home, "stop", "race-etl"),
        _cli(home, "stop", "--all"),
        _cli(home, "rm", "--force", "race-etl"),
    ]
    results = _race(stop)
    # stop --all always succeeds; stop NAME may find the ETL already removed by rm --force
    assert results[1][0] == 0, results
    assert all(rc == 0 or "does not exist" in err for rc, err in results), results
    assert any(rc == 0 for rc, _ in (results[0], results[2]))
    assert not _pod_pids(home)
    assert not (_listening_pids() & {p.pid for p in processes_under(home)})


@pytest.mark.integration
def test_racing_different_inits_one_wins_the_others_are_told_to_replace(home: Path, tmp_path: Path) -> None:
    upper, lower = tmp_path / "upper.py", tmp_path / "lower.py"
    upper.write_text(UPPER)
    lower.write_text(LOWER)
    commands = [
        _cli(home, "--json", "init", "code", "--name", "race-etl", "--from-file", str(f))
        for f in (upper, lower, upper, lower)
    ]
    results = _race(commands)
    winners = [i for i, (rc, _) in enumerate(results) if rc == 0]
    losers = [err for rc, err in results if rc != 0]
    assert winners, results
    # the winners all ran the same definition; every loser got the usual clear error
    assert len({commands[i][-1] for i in winners}) == 1
    assert losers
    for err in losers:
        assert json.loads(err)["type"] == "EtlExistsError"
        assert "replace" in json.loads(err)["error"]
    shims = [p for p in _pod_processes(home) if "podshim" in " ".join(p.cmdline())]
    assert len(shims) == 2
    assert _race([_cli(home, "rm", "--force", "race-etl")])[0][0] == 0
    assert not _pod_pids(home)


@pytest.mark.integration
def test_the_lifecycle_lock_is_exclusive_and_dies_with_its_holder(home: Path) -> None:
    from airflow_ais_etl.cluster.local.homelock import home_lock

    hold = (
        "import sys, time; from pathlib import Path; from airflow_ais_etl.cluster.local.homelock import home_lock;"
        "cm = home_lock(Path(sys.argv[1])).hold(); cm.__enter__(); print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold, str(home)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        lock_file = home_lock(home).path
        with open(lock_file, "rb") as f, pytest.raises(BlockingIOError):
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another process holds it
        assert oct(lock_file.stat().st_mode & 0o777) == oct(0o600)
    finally:
        holder.kill()
        holder.wait()
    with open(lock_file, "rb") as f:  # released by the kernel when the holder died
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with home_lock(home).hold(), home_lock(home).hold():  # re-entrant within a process
        pass


@pytest.mark.integration
def test_stop_all_also_stops_pods_of_an_init_killed_before_it_stored_the_definition(
    home: Path, tmp_path: Path
) -> None:
    from airflow_ais_etl.etl.definition import EtlDefinition
    from airflow_ais_etl.etl.validation import validate

    backend = LocalBackend(home)
    msg = validate(EtlDefinition.from_mapping({"code": UPPER}, kind="code").to_msg("orphan-etl"))
    backend.start_pods(msg)  # what an init killed with -9 after starting pods leaves: pods, no MD entry
    assert backend.read_md().get("orphan-etl") is None
    assert _pod_pids(home)
    result = _race([_cli(home, "--json", "stop", "--all")])
    assert result[0][0] == 0
    assert not _pod_pids(home)
