"""Seeded chaos for the local backend: bucket jobs hit by target removals, joins, pod kills and stops.

Each round starts a bucket job, injects one random event at a random moment, checks how the job
ended (done, or aborted naming exactly that event), then resumes it to completion and checks every
object byte for byte, and that no temp file is left. Shared by the bounded test in the default run
(``tests/chaos/test_chaos.py``) and the soak command (``python -m tests.chaos.soak``).
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_ais_etl.cluster.leases import this_holder
from airflow_ais_etl.dataplane.engine import OfflineOptions
from airflow_ais_etl.dataplane.storage.base import RESERVED_PREFIX, TEMP_PREFIX
from airflow_ais_etl.etl.errors import AbortError

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.cluster.local.backend import LocalBackend
    from airflow_ais_etl.service import AisEtl

ETL = "chaos-etl"
CODE = "import time\n\ndef transform(data):\n    time.sleep(0.01)\n    return data.upper()\n"
EVENTS = ("remove", "join", "kill", "stop")
OBJECTS = 60


def expected(payload: bytes) -> bytes:
    return payload.upper()


@dataclass
class Tally:
    """What the rounds saw: how jobs ended, per injected event."""

    aborted: dict[str, int] = field(default_factory=dict)
    finished_first: int = 0
    rounds: int = 0

    def line(self) -> str:
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(self.aborted.items()))
        return (
            f"{self.rounds} rounds; aborted by the injected event ({parts}); {self.finished_first} done first"
        )


class Chaos:
    """Run chaos rounds against one ETL in one local home; every check raises AssertionError."""

    def __init__(self, api: AisEtl, workdir: Path, seed: int) -> None:
        self.api = api
        backend = api.backend
        self.backend: LocalBackend = backend  # type: ignore[assignment]
        self.rng = random.Random(seed)
        self.src = workdir / "src"
        self.out = workdir / "out"
        self.data = _make_source(self.src, OBJECTS)
        self.tally = Tally()
        self.addresses: set[tuple[str, int]] = set()
        """Every ``(ip, port)`` a pod of the ETL listened on, to check that none listens at the end."""
        api.init_code(ETL, CODE)

    def round(self, index: int) -> None:
        """One job, one event during it, the resume, and the checks."""
        dst = self.out / f"round-{index:05d}"
        self._ensure_running()
        kind = self._pick()
        delay = self.rng.uniform(0.0, 0.35)
        injected: list[str] = []
        injected_at: list[float] = []

        def inject() -> None:
            injected.append(self._inject(kind, delay))
            injected_at.append(time.time())

        thread = threading.Thread(target=inject, daemon=True)
        thread.start()
        try:
            self.api.transform_bucket(ETL, str(self.src), str(dst), OfflineOptions(num_workers=2))
            ended = ""
        except AbortError as err:
            ended = str(err)
        thread.join()
        cause = injected[0]
        if ended:
            assert f"etl job aborted: {cause};" in ended, (
                f"round {index}: injected {cause!r} at {injected_at[0]:.3f}, job said {ended!r}; {self._evidence()}"
            )
            self.tally.aborted[kind] = self.tally.aborted.get(kind, 0) + 1
        else:
            self.tally.finished_first += 1
        self._check(dst, complete=False)
        self._ensure_running()
        stats = self.api.transform_bucket(
            ETL, str(self.src), str(dst), OfflineOptions(num_workers=2, skip_existing=True)
        )
        assert stats["state"] == "done", stats
        self._check(dst, complete=True)
        self.tally.rounds += 1

    def _pick(self) -> str:
        targets = len(self.backend.targets())
        choices = [
            e for e in EVENTS if not (e == "remove" and targets <= 1) and not (e == "join" and targets >= 3)
        ]
        return self.rng.choice(choices)

    def _inject(self, kind: str, delay: float) -> str:
        """Wait ``delay`` seconds, cause the event, and return how a job must name it."""
        time.sleep(delay)
        if kind == "remove":
            tid = self.rng.choice([t.id for t in self.backend.targets()])
            self.backend.remove_target(tid)
            return f"target {tid} left"
        if kind == "join":
            return f"target {self.backend.add_target().id} joined"
        if kind == "kill":
            tid, pod = self.rng.choice(sorted(self.backend._pods(ETL).items()))
            pid = pod.containers[0].pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            while pod.exited() is None:  # until its shim recorded it (slow under load): else the next
                time.sleep(0.01)  # round could start on this dead pod and rightly name the old kill
            return f"pod of {tid} exited with code -9"
        self.api.stop(ETL)
        return f"etl {ETL} stopped by {this_holder().describe()}"

    def _evidence(self) -> str:
        """Describe the recorded events (for a failed cause check)."""
        etl_dir = self.backend.state.etl_dir(ETL)
        files = {p.name: p.read_text() for p in (etl_dir / "aborted", etl_dir / "stopping") if p.exists()}
        changed_at = self.backend.state.cluster().get("changed_at")
        exits = {
            str(p.relative_to(etl_dir)): (p.read_text(), p.stat().st_mtime)
            for p in etl_dir.glob("*/state/*/exit_code")
        }
        return f"files {files}, cluster changed_at {changed_at}, exits {exits}"

    def _ensure_running(self) -> None:
        """Restart the ETL unless all its pods run (a kill after the job ended leaves it degraded)."""
        pods = self.backend._pods(ETL)
        if pods and any(p.exited() for p in pods.values()):
            self.api.stop(ETL)
        if not self.backend.endpoints(ETL):
            self.api.start(ETL)
        for ep in self.backend.endpoints(ETL):
            host, _, port = ep.url.removeprefix("http://").rpartition(":")
            self.addresses.add((host, int(port)))

    def _check(self, dst: Path, *, complete: bool) -> None:
        """Every object present is exact, no temp file; ``complete``: every object is present."""
        got = _objects(dst)
        for name, payload in got.items():
            assert payload == expected(self.data[name]), f"{dst}/{name} differs"
        assert not _temp_files(dst), _temp_files(dst)
        if complete:
            assert sorted(got) == sorted(self.data), f"missing: {sorted(set(self.data) - set(got))}"


def _make_source(root: Path, count: int) -> dict[str, bytes]:
    out = {}
    for i in range(count):
        name = f"d{i % 3}/o-{i:04d}.dat" if i % 4 == 0 else f"o-{i:04d}.dat"
        payload = f"chaos object {i} ".encode() * (1 + (i * 7919) % 200)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(payload)
        out[name] = payload
    return out


def _objects(root: Path) -> dict[str, bytes]:
    out = {}
    for directory, _dirs, files in os.walk(root):
        for fname in files:
            path = os.path.join(directory, fname)
            rel = os.path.relpath(path, root)
            if not rel.startswith(RESERVED_PREFIX) and not fname.startswith(TEMP_PREFIX):
                with open(path, "rb") as f:
                    out[rel] = f.read()
    return out


def _temp_files(root: Path) -> list[str]:
    return [f for _d, _s, files in os.walk(root) for f in files if f.startswith(TEMP_PREFIX)]
