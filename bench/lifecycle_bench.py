"""Measure what the lifecycle tests only bound: abort latency, redo after ``kill -9``, Ctrl-C exit.

Run: ``.venv/bin/python bench/lifecycle_bench.py [--trials 5]``. Never a test (times are figures for
the notes, not assertions). For each trial, on a fresh local home:

  1. abort: a bucket job runs; a pod is killed with SIGKILL (or a target removed, or the ETL stopped
     from another process); prints the seconds from the event to the job noticing it (its abort
     cause set) and to the job returning, and the cause it reported.
  2. redo: ``ais-etl bucket`` is killed with SIGKILL mid-job; prints how many finished objects have
     no journal note (the objects a resumed run transforms again) and the job's rate.
  3. sigint: ``ais-etl bucket`` gets SIGINT while one transform hangs; prints the seconds to exit
     and the exit code.

``--inline N`` measures instead what leases cost inline transforms: ``transform_object`` calls/s
of one small object, in alternating rounds of the same run, with the lease kept across calls (the
service's way, :mod:`~airflow_ais_etl.cluster.inlinelease`), with a lease taken and dropped per
call (the former way), and with no lease at all (the method unwrapped); prints each rate and its
ratio to the lease-free one.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from airflow_ais_etl.cluster.leases import hold_chain_leases
from airflow_ais_etl.dataplane.engine import JobControl, OfflineOptions, job_fingerprint
from airflow_ais_etl.dataplane.journal import Journal
from airflow_ais_etl.dataplane.storage.opener import open_bucket
from airflow_ais_etl.etl.errors import AbortError
from airflow_ais_etl.service import INLINE, AisEtl

SLOW = "import time\n\ndef transform(data):\n    if data.startswith(b'hang'):\n        time.sleep(3600)\n    time.sleep(0.02)\n    return data.upper()\n"
ENV = {"AIS_ETL_GRACE_SECONDS": "1"}


class TimedControl(JobControl):
    def __init__(self) -> None:
        super().__init__()
        self.noticed_at: float | None = None

    def abort(self, cause: str, *, stop_pods: bool = False, replace: bool = False) -> None:
        if self.noticed_at is None:
            self.noticed_at = time.time()
        super().abort(cause, stop_pods=stop_pods, replace=replace)


def _tree(root: Path, n: int) -> None:
    root.mkdir(parents=True)
    for i in range(n):
        (root / f"o-{i:05d}.dat").write_bytes(f"object {i} ".encode() * 20)


def _count(root: Path) -> int:
    return sum(1 for n in os.listdir(root) if n.endswith(".dat")) if root.exists() else 0


def abort_trial(kind: str) -> tuple[float, float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        home, src, dst = Path(tmp) / "home", Path(tmp) / "src", Path(tmp) / "dst"
        _tree(src, 2000)
        api = AisEtl.local(str(home))
        api.init_code("bench-etl", SLOW, env=ENV)
        control = TimedControl()
        out: dict[str, object] = {}

        def job() -> None:
            try:
                api.transform_bucket(
                    "bench-etl", str(src), str(dst), OfflineOptions(num_workers=2), control=control
                )
            except AbortError as err:
                out["cause"] = err.cause  # type: ignore[attr-defined]
            out["end"] = time.time()

        thread = threading.Thread(target=job)
        thread.start()
        while _count(dst) < 50:
            time.sleep(0.01)
        event_at = time.time()
        if kind == "kill":
            pod = api.backend._pods("bench-etl")["t1"]  # type: ignore[attr-defined]
            os.kill(pod.containers[0].pid(), signal.SIGKILL)
        elif kind == "remove":
            api.backend.remove_target("t2")  # type: ignore[attr-defined]
        else:
            subprocess.run(
                [sys.executable, "-m", "airflow_ais_etl.cli", "--home", str(home), "stop", "bench-etl"],
                check=True,
                capture_output=True,
            )
        thread.join()
        api.backend.shutdown()  # type: ignore[attr-defined]
        noticed = (control.noticed_at or float("nan")) - event_at
        return noticed, float(out["end"]) - event_at, str(out.get("cause"))  # type: ignore[arg-type]


def _cli(home: Path, *argv: str) -> list[str]:
    return [sys.executable, "-m", "airflow_ais_etl.cli", "--home", str(home), *argv]


def redo_trial() -> tuple[int, int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        home, src, dst = Path(tmp) / "home", Path(tmp) / "src", Path(tmp) / "dst"
        _tree(src, 3000)
        api = AisEtl.local(str(home))
        api.init_code("bench-etl", SLOW.replace("0.02", "0.002"), env=ENV)
        proc = subprocess.Popen(
            _cli(home, "bucket", "bench-etl", str(src), str(dst), "--num-workers", "8"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while _count(dst) < 300:
            time.sleep(0.005)
        t0, n0 = time.time(), _count(dst)
        time.sleep(0.5)
        rate = (_count(dst) - n0) / (time.time() - t0)
        proc.kill()
        proc.wait()
        done = {n for n in os.listdir(dst) if n.endswith(".dat")}
        noted = set(
            Journal(open_bucket(str(dst)), "bench-etl", job_fingerprint(api.view("bench-etl"))).load()
        )
        api.backend.shutdown()  # type: ignore[attr-defined]
        return len(done - noted), len(done), rate


def sigint_trial() -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        home, src, dst = Path(tmp) / "home", Path(tmp) / "src", Path(tmp) / "dst"
        _tree(src, 400)
        (src / "hang.dat").write_bytes(b"hang")
        api = AisEtl.local(str(home))
        api.init_code("bench-etl", SLOW, env=ENV)
        proc = subprocess.Popen(
            _cli(home, "bucket", "bench-etl", str(src), str(dst)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while _count(dst) < 100:
            time.sleep(0.01)
        t0 = time.time()
        proc.send_signal(signal.SIGINT)
        code = proc.wait()
        elapsed = time.time() - t0
        api.backend.shutdown()  # type: ignore[attr-defined]
        return elapsed, code


def inline_lease_trial(calls: int, rounds: int) -> dict[str, list[float]]:
    """Return inline calls/s per way of leasing, one figure per round (the ways alternate)."""
    unwrapped = AisEtl.transform_object.__wrapped__  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        home, src = Path(tmp) / "home", Path(tmp) / "src"
        src.mkdir()
        (src / "obj").write_bytes(b"inline object " * 64)
        api = AisEtl.local(str(home))
        api.init_code("bench-etl", SLOW.replace("time.sleep(0.02)", "pass"), env=ENV)

        def kept() -> None:
            api.transform_object("bench-etl", str(src), "obj")

        def per_call() -> None:
            with hold_chain_leases(api.backend, "bench-etl", INLINE):
                unwrapped(api, "bench-etl", str(src), "obj")

        def bare() -> None:
            unwrapped(api, "bench-etl", str(src), "obj")

        ways = {"kept lease": kept, "lease per call": per_call, "no lease": bare}
        rates: dict[str, list[float]] = {way: [] for way in ways}
        try:
            for way in ways.values():  # warm up (first connections, imports)
                for _ in range(5):
                    way()
            for _ in range(rounds):
                for name, way in ways.items():
                    t0 = time.perf_counter()
                    for _ in range(calls):
                        way()
                    rates[name].append(calls / (time.perf_counter() - t0))
        finally:
            api.backend.shutdown()  # type: ignore[attr-defined]
        return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--inline", type=int, metavar="CALLS", help="measure inline lease cost instead")
    args = parser.parse_args()
    if args.inline:
        rates = inline_lease_trial(args.inline, args.trials)
        for name, figures in rates.items():  # a ratio per round: neighbours share the machine's load
            ratio = statistics.median(r / b for r, b in zip(figures, rates["no lease"]))
            print(
                f"inline, {name}: median {statistics.median(figures):.0f} calls/s, median ratio to no lease "
                f"{ratio:.2f}; rounds {[round(r) for r in figures]}"
            )
        return
    for kind in ("kill", "remove", "stop"):
        rows = [abort_trial(kind) for _ in range(args.trials)]
        noticed = [r[0] for r in rows]
        ended = [r[1] for r in rows]
        print(
            f"abort/{kind}: noticed median {statistics.median(noticed):.2f}s max {max(noticed):.2f}s; "
            f"job returned median {statistics.median(ended):.2f}s max {max(ended):.2f}s; causes {sorted({r[2] for r in rows})}"
        )
    rows2 = [redo_trial() for _ in range(args.trials)]
    print(
        "redo after kill -9: unnoted objects "
        + ", ".join(f"{r[0]}/{r[1]} at {r[2]:.0f} obj/s" for r in rows2)
    )
    rows3 = [sigint_trial() for _ in range(args.trials)]
    print("SIGINT with a hanging transform: " + ", ".join(f"exit {c} after {t:.2f}s" for t, c in rows3))


if __name__ == "__main__":
    main()
