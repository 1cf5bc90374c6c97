"""Benchmark the offline engine against baselines measured in the same run: every cell of issue 16.

Run (Dask is a bench-only dependency group)::

    python3 -m uv run --group dask python bench/offline_bench.py [--quick] [--fs disk|tmpfs|both]
        [--rounds 3] [--only small|zlib|large|largez] [--skip CONTENDER] [--dir DIR] [--tmpfs-dir DIR]
        [--dst-store]

Workloads (``--quick``: seconds each): 20,000 x 4 KiB echo, 200 x 4 MiB zlib-6, 64 x 64 MiB echo and
zlib-6 (16 on tmpfs, where they live in RAM). Contenders, each in a fresh process per round, rounds
alternating their order: an in-process serial loop, ProcessPool(2), Dask bag (processes, 2
workers), naive HTTP (stdlib server + ``requests`` threads), the project (``AisEtl.local()``, 2
targets, hpush, default options; ``transform_bucket`` timed without the init) and the project with
direct put + hpull, both also with the file transport off (``push-http``, ``direct-http``: the HTTP
path that Kubernetes and object-store buckets take). Peak RSS is sampled over each contender's whole process tree (for the project:
the engine's process and both pods' trees) and the engine's own peak is its ``ru_maxrss``. Medians
are printed as rates and as ratios against the baselines, each with its goal (met / not met).

``--dst-store``: the project's contenders write to an object store instead of a directory
(``local://DIR``: fsspec's local file system through Airflow's ``ObjectStoragePath``, the
object-store code path), where hpush has the engine upload every result and direct put has the
targets' gateways do it; the baselines still write files.
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
import threading
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).parent))

from benchdata import Workload, make_data, syncfs_of, workloads
from benchgoals import report

PROJECT = ("project", "direct", "push-http", "direct-http")
"""The project's contenders: hpush with default options, and direct put + hpull; each also with the
pods' file transport off (``-http``: objects over HTTP, the path of Kubernetes and object stores)."""
HTTP_ONLY = {"AIS_ETL_FILE_SOCKET": ""}
ALL = ("serial", "pool2", "dask", "http", *PROJECT)


# ---------------------------------------------------------------------------------------------- child side
def child(spec: dict[str, Any]) -> None:
    """Run one contender over one workload in this fresh process; print seconds and figures as JSON."""
    out: dict[str, Any] = {}
    src, dst, kind = Path(spec["src"]), Path(spec["dst"]), spec["kind"]
    if spec["contender"] in PROJECT:
        from airflow_ais_etl.dataplane.engine import OfflineOptions
        from airflow_ais_etl.service import AisEtl

        api = AisEtl.local(spec["home"])
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        stats = api.transform_bucket(spec["etl"], str(src), spec.get("dst_url") or str(dst), OfflineOptions())
        out["seconds"] = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        out["engine_cpu"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        out.update({k: stats[k] for k in ("objects", "bytes_out", "bytes_via_engine", "direct_put_objects")})
        out["file_objects"] = stats.get("file_objects", 0)
    else:
        import baselines

        fn = baselines.CONTENDERS[spec["contender"]]
        if spec["contender"] == "http":
            out["seconds"] = fn(src, dst, kind, threads=4 if spec["size"] >= 16 << 20 else 16)
        else:
            out["seconds"] = fn(src, dst, kind)
        out["objects"] = len(os.listdir(dst))
    out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(out), flush=True)


# ---------------------------------------------------------------------------------------------- parent side
def tree(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            out += [p, *p.children(recursive=True)]
        except psutil.Error:
            continue
    return out


def rss_of(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


def run_child(spec: dict[str, Any], pods: list[psutil.Process]) -> dict[str, Any]:
    """Run a contender's child process; sample its tree's RSS (plus the pods') meanwhile."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", json.dumps(spec)], stdout=subprocess.PIPE, text=True
    )
    peak = 0
    done = threading.Event()
    me = psutil.Process(proc.pid)
    # The pods' processes are found once: each search for children reads every process's
    # /proc entry, and three per sample (child, two pods) cost the project's runs more than others'.
    pod_tree = tree(pods)

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, rss_of(tree([me]) + pod_tree))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, _ = proc.communicate()
    finally:
        done.set()
        sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{spec['contender']} on {spec['workload']} failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result["tree_rss"] = peak
    return result


def pod_processes(api: Any, etl: str) -> list[psutil.Process]:
    """The processes of the ETL's pods (their children are added while sampling)."""
    procs = []
    for pod in api.backend._pods(etl).values():
        for pid in pod.pids():
            try:
                procs.append(psutil.Process(pid))
            except psutil.Error:
                continue
    return procs


def have_dask() -> bool:
    try:
        import dask.bag  # noqa: F401
    except ImportError:
        print("dask is not installed: run with `python3 -m uv run --group dask` to include Dask bag")
        return False
    return True


def bench_fs(fs: str, base: Path, args: argparse.Namespace, contenders: list[str]) -> dict[str, Any]:
    """Run every chosen workload on one file system; return ``{workload: {contender: [results]}}``."""
    from airflow_ais_etl.service import AisEtl

    api = AisEtl.local(str(base / "home"))
    results: dict[str, Any] = {}
    try:
        for w in workloads(args.quick, fs):
            if args.only and w.name not in args.only:
                continue
            results[w.name] = {
                "workload": w,
                "runs": bench_workload(api, fs, base, w, args.rounds, contenders, store=args.dst_store),
            }
            if not args.keep_data:
                shutil.rmtree(base / f"src-{w.name}", ignore_errors=True)
    finally:
        api.backend.shutdown()  # type: ignore[attr-defined]
    return results


def bench_workload(
    api: Any, fs: str, base: Path, w: Workload, rounds: int, contenders: list[str], *, store: bool = False
) -> dict[str, list[dict[str, Any]]]:
    src = base / f"src-{w.name}"
    make_data(src, w)
    code, chunk = w.etl_code()
    etls = {c: f"bench-{w.name}-{c}" for c in PROJECT if c in contenders}
    for c, etl in etls.items():
        options: dict[str, Any] = {"comm_type": "hpull", "direct_put": True} if c.startswith("direct") else {}
        if c.endswith("-http"):
            options["env"] = HTTP_ONLY
        api.init_code(etl, code, chunk_size=chunk, **options)
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for r in range(rounds):
            order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
            for name in order:
                dst = base / "dst"
                shutil.rmtree(dst, ignore_errors=True)
                syncfs_of(str(base))  # the last contender's deletes reach the disk before this clock starts
                spec = {"contender": name, "workload": w.name, "kind": w.kind, "size": w.size}
                spec.update(src=str(src), dst=str(dst), home=str(base / "home"), etl=etls.get(name, ""))
                if store and name in PROJECT:
                    dst.mkdir()
                    spec["dst_url"] = f"local://{dst}"
                pods = pod_processes(api, etls[name]) if name in PROJECT else []
                res = run_child(spec, pods)
                shutil.rmtree(dst, ignore_errors=True)
                if res["objects"] != w.count:
                    raise RuntimeError(f"{name} wrote {res['objects']} of {w.count} objects")
                runs.setdefault(name, []).append(res)
                mbs = w.total_mb / res["seconds"]
                print(
                    f"[{fs} {w.name} round {r + 1}] {name:11} {w.count / res['seconds']:9.0f} obj/s "
                    f"{mbs:8.1f} MB/s  tree {res['tree_rss'] / 2**20:7.1f} MiB",
                    flush=True,
                )
    finally:
        for etl in etls.values():
            api.stop(etl)
    return runs


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (seconds per round)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--fs", choices=["disk", "tmpfs", "both"], default="both")
    p.add_argument(
        "--dir", help="disk work directory (default: a new temp dir under /tmp, removed at the end)"
    )
    p.add_argument("--tmpfs-dir", help="tmpfs work directory (default: a new dir under /dev/shm, removed)")
    p.add_argument("--only", choices=["small", "zlib", "large", "largez"], action="append")
    p.add_argument("--skip", choices=ALL, action="append", default=[])
    p.add_argument("--keep-data", action="store_true", help="keep the generated sources between runs")
    p.add_argument(
        "--dst-store", action="store_true", help="the project writes to an object store (local://)"
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    contenders = [c for c in ALL if c not in args.skip and (c != "dask" or have_dask())]
    results = {}
    for fs in ("disk", "tmpfs") if args.fs == "both" else (args.fs,):
        given = args.dir if fs == "disk" else args.tmpfs_dir
        base = Path(
            given or tempfile.mkdtemp(prefix="offline-bench-", dir=None if fs == "disk" else "/dev/shm")
        )
        base.mkdir(parents=True, exist_ok=True)
        try:
            results[fs] = bench_fs(fs, base, args, contenders)
        finally:
            if not given:
                shutil.rmtree(base, ignore_errors=True)
    report(results, statistics.median)


if __name__ == "__main__":
    main()
