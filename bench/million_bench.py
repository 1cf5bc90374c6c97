"""A million objects: the engine's peak RSS for a dry run and a real run, and the speed of a resume.

Run: ``.venv/bin/python bench/million_bench.py [--count 1000000] [--dir DIR] [--layout flat|dirs]
[--phases dry,real,resume] [--keep]``. Never a test. ``--keep`` keeps the source and the last
destination, so ``--phases resume`` alone can re-measure a resume without redoing the real run.

Creates ``count`` x 1 KiB objects once (kept with ``--keep``; a flat directory by default, the hardest
case for a sorted listing; ``dirs``: 1,000 objects per directory), then runs in fresh child processes:

  dry     a dry run over every object: the engine's peak RSS (goal <= 256 MiB);
  real    a real echo transform (local backend, 2 targets, hpush, defaults): peak RSS (<= 256 MiB);
  resume  the same job again with ``skip_existing``: every object skipped, at >= 50,000 objects/s,
          and its peak RSS (the resume index of every object is in memory).

Peak RSS is the child's ``ru_maxrss``: the engine's own process, which is what the goal bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MiB = 2**20
ETL = "million-echo"


def make_objects(src: Path, count: int, layout: str) -> float:
    """Create ``count`` objects of 1 KiB (skipped when a previous run left them); return seconds."""
    marker = src.parent / f"made-{count}-{layout}"
    if marker.exists():
        return 0.0
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    payload = os.urandom(1024)
    t0 = time.perf_counter()
    for i in range(count):
        d = src if layout == "flat" else src / f"d{i // 1000:04d}"
        if layout != "flat" and i % 1000 == 0:
            d.mkdir()
        fd = os.open(d / f"obj-{i:07d}.bin", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, payload)
        os.close(fd)
    marker.touch()
    return time.perf_counter() - t0


def child(spec: dict[str, Any]) -> None:
    from airflow_ais_etl.dataplane.engine import OfflineOptions
    from airflow_ais_etl.service import AisEtl

    api = AisEtl.local(spec["home"])
    opts = OfflineOptions(dry_run=spec["phase"] == "dry", skip_existing=spec["phase"] == "resume")
    t0 = time.perf_counter()
    stats = api.transform_bucket(ETL, spec["src"], spec["dst"], opts)
    seconds = time.perf_counter() - t0
    keys = ("objects", "skipped", "planned_objects", "error_count")
    out = {"seconds": seconds, **{k: stats[k] for k in keys}}
    out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(out), flush=True)


def run_phase(phase: str, home: Path, src: Path, dst: Path) -> dict[str, Any]:
    spec = {"phase": phase, "home": str(home), "src": str(src), "dst": str(dst)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{phase} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--count", type=int, default=1_000_000)
    p.add_argument("--dir", help="work directory (default: a new dir under /tmp, removed unless --keep)")
    p.add_argument("--layout", choices=["flat", "dirs"], default="flat")
    p.add_argument("--phases", default="dry,real,resume")
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the generated objects and the last destination (a later `--phases resume` reuses it)",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    from airflow_ais_etl.service import AisEtl

    base = Path(args.dir or tempfile.mkdtemp(prefix="million-bench-"))
    src, dst, home = base / "src", base / "dst", base / "home"
    made = make_objects(src, args.count, args.layout)
    if made:
        print(f"created {args.count} x 1 KiB objects ({args.layout}) in {made:.0f} s", flush=True)
    api = AisEtl.local(str(home))
    api.init_code(ETL, "def transform(data):\n    return data\n")
    figures: dict[str, dict[str, Any]] = {}
    try:
        for phase in args.phases.split(","):
            if phase != "resume":
                shutil.rmtree(dst, ignore_errors=True)
            res = figures[phase] = run_phase(phase, home, src, dst)
            done = res["skipped"] if phase == "resume" else res["objects"]
            print(
                f"{phase:7} {done} of {res['planned_objects']} objects in {res['seconds']:.1f} s "
                f"({done / res['seconds']:.0f} obj/s), engine peak RSS {res['peak_rss'] / MiB:.1f} MiB",
                flush=True,
            )
    finally:
        api.stop(ETL)
        api.backend.shutdown()  # type: ignore[attr-defined]
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    report(figures, args.count)


def report(figures: dict[str, dict[str, Any]], count: int) -> None:
    print(f"\n{count} objects:")
    for phase, res in figures.items():
        rss = res["peak_rss"] / MiB
        print(
            f"  {phase:7} engine peak RSS {rss:7.1f} MiB   goal <= 256: {'met' if rss <= 256 else 'NOT MET'}"
        )
    if "resume" in figures:
        res = figures["resume"]
        rate = res["skipped"] / res["seconds"]
        ok = "met" if rate >= 50_000 and res["skipped"] == count else "NOT MET"
        print(f"  resume  skipped {res['skipped']} at {rate:.0f} obj/s   goal >= 50000 obj/s: {ok}")


if __name__ == "__main__":
    main()
