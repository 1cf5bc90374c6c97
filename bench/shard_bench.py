"""Hash shards across processes: two shard jobs in parallel against one job over the whole bucket.

Run: ``.venv/bin/python bench/shard_bench.py [--count 400] [--size 262144] [--rounds 3] [--dir DIR]``.

Each job runs in its own process, as mapped Airflow tasks on separate workers would, through the
same ETL (local backend, 2 targets, hpush, defaults) with a CPU-bound transform (zlib level 9).
Rounds alternate one job (``shard`` unset) and two jobs started together (``shard=(0, 2)`` and
``(1, 2)``); the figure is the ratio of their wall times (goal: two shards >= 1.6x one).

It also counts the CPU seconds every round used (the pods' process trees and the shard jobs'
processes) and prints the cores one job keeps busy: on a machine with ``C`` cores, two shards
can be at most ``C / cores(one job)`` times faster than one job, whatever the engine does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ETL = "shard-zlib9"
CODE = "import zlib\n\ndef transform(data):\n    return zlib.compress(data, 9)\n"


def child(spec: dict[str, Any]) -> None:
    from airflow_ais_etl.dataplane.engine import OfflineOptions
    from airflow_ais_etl.service import AisEtl

    shard = tuple(spec["shard"]) if spec["shard"] else None
    stats = AisEtl.local(spec["home"]).transform_bucket(
        ETL,
        spec["src"],
        spec["dst"],
        OfflineOptions(shard=shard),
    )
    print(json.dumps({"objects": stats["objects"]}), flush=True)


def pods_cpu_seconds(api: Any) -> float:
    """Return the CPU seconds used so far by every process of the ETL's pods."""
    from airflow_ais_etl.cluster.local.processes import process_tree

    total = 0.0
    for pod in api.backend._pods(ETL).values():
        for proc in process_tree(pod):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_jobs(base: Path, shards: list[tuple[int, int] | None]) -> tuple[float, int]:
    """Start one process per shard at once; return the wall time until the last ends and the objects."""
    dst = base / "dst"
    shutil.rmtree(dst, ignore_errors=True)
    spec = {"home": str(base / "home"), "src": str(base / "src"), "dst": str(dst)}
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", json.dumps({**spec, "shard": s})],
            stdout=subprocess.PIPE,
            text=True,
        )
        for s in shards
    ]
    outs = [p.communicate()[0] for p in procs]
    seconds = time.perf_counter() - t0
    if any(p.returncode for p in procs):
        raise RuntimeError("a shard job failed")
    return seconds, sum(json.loads(o.strip().splitlines()[-1])["objects"] for o in outs)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--count", type=int, default=400)
    p.add_argument("--size", type=int, default=256 << 10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dir")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    from airflow_ais_etl.service import AisEtl

    base = Path(args.dir or tempfile.mkdtemp(prefix="shard-bench-"))
    src = base / "src"
    src.mkdir(parents=True, exist_ok=True)
    text = b"".join(
        b"line %d of a compressible object %s\n" % (i, os.urandom(4).hex().encode()) for i in range(8192)
    )
    for i in range(args.count):
        (src / f"obj-{i:05d}.txt").write_bytes((text * (1 + args.size // len(text)))[: args.size])
    api = AisEtl.local(str(base / "home"))
    api.init_code(ETL, CODE)
    one: list[float] = []
    two: list[float] = []
    cores: dict[str, list[float]] = {"one": [], "two": []}
    try:
        for r in range(args.rounds):
            for name in ("one", "two") if r % 2 == 0 else ("two", "one"):
                cpu0 = pods_cpu_seconds(api) + children_cpu_seconds()
                seconds, objects = run_jobs(base, [None] if name == "one" else [(0, 2), (1, 2)])
                used = (pods_cpu_seconds(api) + children_cpu_seconds() - cpu0) / seconds
                assert objects == args.count, objects
                (one if name == "one" else two).append(seconds)
                cores[name].append(used)
                print(
                    f"[round {r + 1}] {name} job(s): {args.count / seconds:7.1f} obj/s, {used:.2f} cores busy",
                    flush=True,
                )
    finally:
        api.stop(ETL)
        api.backend.shutdown()  # type: ignore[attr-defined]
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    ratio = statistics.median(one) / statistics.median(two)
    busy = statistics.median(cores["one"])
    ncpu = os.cpu_count() or 1
    print(
        f"\none job keeps {busy:.2f} of {ncpu} cores busy (pods + engine): two shards can be at most "
        f"{ncpu / busy:.2f}x faster on this machine"
    )
    print(
        f"\ntwo shards in parallel / one job: {ratio:.2f}x   goal >= 1.6: {'met' if ratio >= 1.6 else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
