"""Benchmark the offline engine (local backend) against baselines this script implements itself.

Run: ``.venv/bin/python bench/offline_bench.py [--quick] [--rounds 3] [--dir DIR]``. Never a test.

Scenarios, all on the same generated data, every contender writing atomically (temp file + rename,
no fsync per object: the engine syncs the file system once per journal batch and so does the
serial loop once at its end):

  1. small: N x 4 KiB echo. Engine vs an in-process serial loop (read, transform, write) and vs a
     naive HTTP path (stdlib ThreadingHTTPServer transform server + a thread pool of ``requests``).
     Targets: engine >= 0.3x serial, >= 3x naive HTTP.
  2. zlib: N x 4 MiB, zlib level 6. Engine vs a ProcessPool of the same width (2). Target >= 0.85x.
  3. large: N x 256 MiB echo through a CHUNK_SIZE (1 MiB) streaming transform. Engine MB/s vs the
     serial loop's (target >= 0.6x); the engine process's peak RSS (target <= 128 MiB) and the pods'.

The engine runs in a child process (``--engine-child``) so its peak RSS is its own; pods are started
once per scenario by the parent. Rounds alternate contenders; medians are printed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.server
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
import zlib
from pathlib import Path
from typing import Any

import psutil

ECHO = "def transform(data):\n    return data\n"
ZLIB6 = "import zlib\n\ndef transform(data):\n    return zlib.compress(data, 6)\n"
STREAM_ECHO = "def transform(reader, writer):\n    for chunk in reader:\n        writer.write(chunk)\n"
CHUNK = 1 << 20


# ---------------------------------------------------------------------------------------------- data
def make_data(root: Path, count: int, size: int, kind: str) -> None:
    """Write ``count`` objects of ``size`` bytes: random (echo) or half text, half random (zlib)."""
    root.mkdir(parents=True, exist_ok=True)
    block = os.urandom(CHUNK)
    text = (b"the quick brown fox jumps over the lazy dog %d " * 4096)[: CHUNK // 2]
    for i in range(count):
        path = root / f"obj-{i:06d}.bin"
        if path.exists() and path.stat().st_size == size:
            continue
        with open(path, "wb") as f:
            left = size
            while left > 0:
                if kind == "zlib":
                    piece = (text + os.urandom(CHUNK // 2))[:left]
                else:
                    piece = block[:left]
                f.write(piece)
                left -= len(piece)


def atomic_write(path: str, chunks: Any) -> int:
    tmp = f"{os.path.dirname(path)}/.bench-tmp-{os.getpid()}-{os.path.basename(path)}"
    n = 0
    with open(tmp, "wb") as f:
        for c in chunks:
            f.write(c)
            n += len(c)
    os.replace(tmp, path)
    return n


def syncfs_of(directory: str) -> None:
    from airflow_ais_etl.dataplane.storage.local import syncfs

    syncfs(directory)


# ---------------------------------------------------------------------------------------------- baselines
def serial_loop(src: Path, dst: Path, transform: Any, chunked: bool) -> float:
    """Read, transform, write every object in this process; return seconds."""
    dst.mkdir(parents=True, exist_ok=True)
    names = sorted(os.listdir(src))
    t0 = time.perf_counter()
    for name in names:
        if chunked:
            with open(src / name, "rb") as f:
                atomic_write(str(dst / name), (transform(c) for c in iter(lambda f=f: f.read(CHUNK), b"")))
        else:
            with open(src / name, "rb") as f:
                data = f.read()
            atomic_write(str(dst / name), [transform(data)])
    syncfs_of(str(dst))
    return time.perf_counter() - t0


def _zlib_one(args: tuple[str, str]) -> int:
    src, dst = args
    with open(src, "rb") as f:
        data = f.read()
    return atomic_write(dst, [zlib.compress(data, 6)])


def process_pool(src: Path, dst: Path, width: int) -> float:
    dst.mkdir(parents=True, exist_ok=True)
    jobs = [(str(src / n), str(dst / n)) for n in sorted(os.listdir(src))]
    with concurrent.futures.ProcessPoolExecutor(width) as pool:
        pool.submit(int, 0).result()  # workers up before the clock starts
        t0 = time.perf_counter()
        list(pool.map(_zlib_one, jobs, chunksize=4))
    syncfs_of(str(dst))
    return time.perf_counter() - t0


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:
        data = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


def naive_http(src: Path, dst: Path, threads: int) -> float:
    """A stdlib threading transform server in a child process and a pool of ``requests`` sessions."""
    import requests

    code = (
        f"import http.server, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import offline_bench as b; "
        "s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), b._EchoHandler); "
        "print(s.server_address[1], flush=True); s.serve_forever()"
    )
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}/"
        dst.mkdir(parents=True, exist_ok=True)
        local = threading.local()

        def one(name: str) -> None:
            sess = getattr(local, "s", None)
            if sess is None:
                sess = local.s = requests.Session()
            with open(src / name, "rb") as f:
                data = f.read()
            resp = sess.put(url + name, data=data)
            resp.raise_for_status()
            atomic_write(str(dst / name), [resp.content])

        names = sorted(os.listdir(src))
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, names))
        syncfs_of(str(dst))
        return time.perf_counter() - t0
    finally:
        server.kill()
        server.wait()


# ---------------------------------------------------------------------------------------------- engine
def engine_child(home: str, etl: str, src: str, dst: str, workers: int) -> None:
    """Run one offline job in this process and print its seconds, stats and peak RSS as JSON."""
    from airflow_ais_etl.dataplane.engine import OfflineOptions
    from airflow_ais_etl.service import AisEtl

    api = AisEtl.local(home)
    t0 = time.perf_counter()
    stats = api.transform_bucket(etl, src, dst, OfflineOptions(num_workers=workers))
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "objects": stats["objects"], "peak_rss": rss}))


def tree_rss(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            continue
    return total


def run_engine(
    home: str, etl: str, src: Path, dst: Path, workers: int, pod_procs: list[psutil.Process]
) -> dict[str, Any]:
    """Run the engine child; sample the pods' RSS meanwhile."""
    peak_pods = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_pods
        while not done.wait(0.05):
            peak_pods = max(peak_pods, tree_rss(pod_procs))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--engine-child", home, etl, str(src), str(dst), str(workers)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        done.set()
        sampler.join()
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["peak_pods_rss"] = peak_pods
    return result


def pod_processes(api: Any, etl: str) -> list[psutil.Process]:
    from airflow_ais_etl.cluster.local.backend import _process_tree

    return [p for pod in api.backend._pods(etl).values() for p in _process_tree(pod)]


# ---------------------------------------------------------------------------------------------- main
def fresh(base: Path, name: str) -> Path:
    path = base / name
    if path.exists():
        shutil.rmtree(path)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes (a few seconds per round)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dir", help="work directory (default: a new temp dir, removed at the end)")
    p.add_argument("--only", choices=["small", "zlib", "large"], action="append")
    p.add_argument("--engine-child", nargs=5, metavar=("HOME", "ETL", "SRC", "DST", "WORKERS"))
    args = p.parse_args()
    if args.engine_child:
        home, etl, src, dst, workers = args.engine_child
        engine_child(home, etl, src, dst, int(workers))
        return

    from airflow_ais_etl.service import AisEtl

    sizes = {
        "small": (2000, 4 << 10) if args.quick else (20000, 4 << 10),
        "zlib": (40, 4 << 20) if args.quick else (200, 4 << 20),
        "large": (4, 64 << 20) if args.quick else (16, 256 << 20),
    }
    only = args.only or ["small", "zlib", "large"]
    base = Path(args.dir or tempfile.mkdtemp(prefix="offline-bench-"))
    home = str(base / "home")
    api = AisEtl.local(home)
    results: dict[str, dict[str, list[float]]] = {}
    extra: dict[str, list[float]] = {"engine_rss": [], "pods_rss": []}
    try:
        for scen in only:
            count, size = sizes[scen]
            src = base / f"src-{scen}"
            make_data(src, count, size, "zlib" if scen == "zlib" else "echo")
            code, chunk = {"small": (ECHO, 0), "zlib": (ZLIB6, 0), "large": (STREAM_ECHO, CHUNK)}[scen]
            etl = f"bench-{scen}"
            api.init_code(etl, code, chunk_size=chunk, replace=True)
            pods = pod_processes(api, etl)
            rec = results.setdefault(scen, {})
            total_mb = count * size / 1e6
            for r in range(args.rounds):
                res = run_engine(home, etl, src, fresh(base, "dst-engine"), 8, pods)
                assert res["objects"] == count, res
                rec.setdefault("engine", []).append(res["seconds"])
                if scen == "large":
                    extra["engine_rss"].append(res["peak_rss"] / 2**20)
                    extra["pods_rss"].append(res["peak_pods_rss"] / 2**20)
                if scen == "small":
                    rec.setdefault("serial", []).append(serial_loop(src, fresh(base, "dst-b"), bytes, False))
                    rec.setdefault("naive_http", []).append(naive_http(src, fresh(base, "dst-b"), 16))
                elif scen == "zlib":
                    rec.setdefault("processpool", []).append(process_pool(src, fresh(base, "dst-b"), 2))
                else:
                    rec.setdefault("serial", []).append(serial_loop(src, fresh(base, "dst-b"), bytes, True))
                line = ", ".join(
                    f"{k} {count / v[-1]:.0f} obj/s ({total_mb / v[-1]:.0f} MB/s)" for k, v in rec.items()
                )
                print(f"[{scen} round {r + 1}] {line}", flush=True)
                shutil.rmtree(base / "dst-engine", ignore_errors=True)
                shutil.rmtree(base / "dst-b", ignore_errors=True)
            api.stop(etl)
    finally:
        api.backend.shutdown()  # type: ignore[attr-defined]
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)

    print("\nmedians (seconds -> rate) and ratios")
    for scen, rec in results.items():
        count, size = sizes[scen]
        med = {k: statistics.median(v) for k, v in rec.items()}
        for k, v in med.items():
            print(f"  {scen:5} {k:12} {count / v:9.1f} obj/s {count * size / v / 1e6:9.1f} MB/s")
        for k in med:
            if k != "engine":
                print(f"  {scen:5} engine/{k:12} {med[k] / med['engine']:.2f}x")
    if extra["engine_rss"]:
        print(
            f"  large engine peak RSS {statistics.median(extra['engine_rss']):.1f} MiB (max {max(extra['engine_rss']):.1f})"
        )
        print(f"  large pods peak RSS (both pod trees) {statistics.median(extra['pods_rss']):.1f} MiB")


if __name__ == "__main__":
    main()
