"""The contenders the project is measured against, each timed from its first object to its sync.

Every one runs :func:`benchdata.one_object` (read, transform, atomic write) over the same objects:
an in-process serial loop, a ProcessPool of width 2, Dask bag (processes scheduler, 2 workers) and a
naive HTTP path (a stdlib ``ThreadingHTTPServer`` transform server and a pool of ``requests``).
Pools are started and warmed before the clock starts, as the project's pods are.
"""

from __future__ import annotations

import concurrent.futures
import http.server
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

from benchdata import atomic_write, jobs, one_object, syncfs_of

WIDTH = 2


def serial_loop(src: Path, dst: Path, kind: str) -> float:
    todo = jobs(src, dst, kind)
    t0 = time.perf_counter()
    for job in todo:
        one_object(job)
    syncfs_of(str(dst))
    return time.perf_counter() - t0


def process_pool(src: Path, dst: Path, kind: str) -> float:
    todo = jobs(src, dst, kind)
    with concurrent.futures.ProcessPoolExecutor(WIDTH) as pool:
        list(pool.map(int, range(WIDTH)))  # workers up before the clock starts
        t0 = time.perf_counter()
        list(pool.map(one_object, todo, chunksize=max(1, min(64, len(todo) // (WIDTH * 8)))))
        syncfs_of(str(dst))
        return time.perf_counter() - t0


def dask_bag(src: Path, dst: Path, kind: str) -> float:
    """Dask bag, processes scheduler, 2 workers (a bench-only dependency: ``uv run --group dask``)."""
    import dask
    import dask.bag as db

    todo = jobs(src, dst, kind)
    with concurrent.futures.ProcessPoolExecutor(WIDTH) as pool:
        list(pool.map(int, range(WIDTH)))
        with dask.config.set(scheduler="processes", pool=pool, num_workers=WIDTH):
            bag = db.from_sequence(todo, npartitions=min(len(todo), 8 * WIDTH))
            t0 = time.perf_counter()
            bag.map(one_object).sum().compute()
            syncfs_of(str(dst))
            return time.perf_counter() - t0


class _TransformHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:
        data = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path.endswith("?zlib"):
            data = zlib.compress(data, 6)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


def serve() -> None:
    """The naive transform server (run in its own process by :func:`naive_http`)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TransformHandler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def naive_http(src: Path, dst: Path, kind: str, threads: int = 16) -> float:
    """Whole objects PUT to the naive server by ``threads`` ``requests`` sessions, results written."""
    import requests

    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import baselines; baselines.serve()"
    )
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}/"
        local = threading.local()
        todo = jobs(src, dst, kind)

        def one(job: tuple[str, str, str]) -> None:
            sess = getattr(local, "s", None) or requests.Session()
            local.s = sess
            with open(job[0], "rb") as f:
                data = f.read()
            resp = sess.put(f"{url}{Path(job[0]).name}?{kind}", data=data)
            resp.raise_for_status()
            atomic_write(job[1], [resp.content])

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, todo))
        syncfs_of(str(dst))
        return time.perf_counter() - t0
    finally:
        server.kill()
        server.wait()


CONTENDERS = {"serial": serial_loop, "pool2": process_pool, "dask": dask_bag, "http": naive_http}
