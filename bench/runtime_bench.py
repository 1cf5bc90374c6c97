"""Benchmark the transformer runtime against AIStore's own FastAPI ETL webserver.

Run: ``.venv/bin/python bench/runtime_bench.py [--seconds 3] [--rounds 3] [--workers N]``. One run,
same machine, same aiohttp client (keep-alive, N requests in flight), same echo transform on both
servers. Contenders run side by side and are measured in alternating rounds (medians reported) so
background load on a shared machine hits all of them alike.

Figures printed:
  1. 4 KiB PUT echo, 32 in flight: req/s of ours vs AIS (target >= 1.5x)
  2. 16 MiB PUT echo, 4 in flight: MB/s of ours vs AIS (target >= 1.0x)
  3. CPU-bound zlib level 6 on 1 MiB objects: ours with 2 workers vs 1 worker (target >= 1.7x),
     plus the same ratio for a GIL-bound pure-Python transform (zlib releases the GIL, so one
     multi-threaded worker already uses several cores for it)
  4. Peak RSS of our whole server process tree while a 256 MiB object streams through a
     CHUNK_SIZE transform (target <= 64 MiB)
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import psutil

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

REPO_ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20

ECHO = "def transform(data):\n    return data\n"
ZLIB6 = "import zlib\n\ndef transform(data):\n    return zlib.compress(data, 6)\n"
GIL_BOUND = textwrap.dedent(
    """
    def transform(data):
        acc = 0
        for b in data[:200_000]:
            acc = (acc * 31 + b) & 0xFFFFFFFF
        return acc.to_bytes(4, "big")
    """
)
STREAM_COPY = textwrap.dedent(
    """
    def transform(reader, writer):
        for chunk in reader:
            writer.write(chunk)
    """
)
AIS_ECHO = textwrap.dedent(
    """
    from aistore.sdk.etl.webserver.fastapi_server import FastAPIServer

    class EchoServer(FastAPIServer):
        def transform(self, data, *_):
            return data

    fastapi_server = EchoServer(host="127.0.0.1", port=0)
    fastapi_app = fastapi_server.app
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_health(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become healthy")


@contextlib.contextmanager
def run_server(
    argv: list[str], env: dict[str, str], port: int, cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, env=env, cwd=str(cwd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_health(port, proc)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def ours(tmp: Path, code: str, workers: int, **extra: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    code_dir = Path(tempfile.mkdtemp(dir=tmp))
    (code_dir / "code.py").write_text(code)
    port = free_port()
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        AIS_ETL_CODE_DIR=str(code_dir),
        AIS_ETL_LISTEN_HOST="127.0.0.1",
        AIS_ETL_LISTEN_PORT=str(port),
        AIS_ETL_WORKERS=str(workers),
        **extra,
    )
    with run_server([sys.executable, "-m", "airflow_ais_etl.runtime"], env, port, tmp) as proc:
        yield port, proc


@contextlib.contextmanager
def ais_fastapi(tmp: Path, workers: int) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    mod_dir = Path(tempfile.mkdtemp(dir=tmp))
    (mod_dir / "ais_echo_server.py").write_text(AIS_ECHO)
    port = free_port()
    env = dict(
        os.environ, AIS_TARGET_URL="http://127.0.0.1:9/v1/etl/_object/AbCdEfGhIj", PYTHONPATH=str(mod_dir)
    )
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "ais_echo_server:fastapi_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    with run_server(argv, env, port, mod_dir) as proc:
        yield port, proc


async def load(
    port: int, size: int, concurrency: int, duration: float, body: bytes | None = None
) -> tuple[float, float]:
    """PUT ``size``-byte objects with ``concurrency`` requests in flight; return (req/s, MB/s)."""
    payload = body if body is not None else os.urandom(size)
    url = f"http://127.0.0.1:{port}/bench/obj"
    done = 0
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Warm up every connection first.
        await asyncio.gather(*[_put(session, url, payload) for _ in range(concurrency)])
        end = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < end:
                await _put(session, url, payload)
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        elapsed = time.perf_counter() - start
    return done / elapsed, done * size / elapsed / 1e6


async def _put(session: aiohttp.ClientSession, url: str, payload: bytes) -> int:
    async with session.put(url, data=payload) as resp:
        data = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"status {resp.status}: {data[:200]!r}")
        return len(data)


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


async def stream_big(port: int, total: int, piece: int = MIB) -> int:
    """PUT ``total`` bytes as a chunked stream and read the answer as a stream; return bytes back."""
    block = os.urandom(piece)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(total // piece):
            yield block

    got = 0
    async with aiohttp.ClientSession() as session:
        async with session.put(f"http://127.0.0.1:{port}/bench/big", data=body()) as resp:
            async for chunk in resp.content.iter_chunked(MIB):
                got += len(chunk)
            if resp.status != 200:
                raise RuntimeError(f"status {resp.status}")
    return got


def _load_in_process(args: tuple[int, int, int, float, bytes | None]) -> tuple[float, float]:
    return asyncio.run(load(*args))


CLIENT_POOL: concurrent.futures.ProcessPoolExecutor | None = None
"""Client processes: one aiohttp process tops out near one core (~8k small req/s here), which
would measure the client instead of the servers; N processes share the in-flight requests."""


def load_parallel(
    port: int, size: int, concurrency: int, seconds: float, body: bytes | None
) -> tuple[float, float]:
    """Run :func:`load` in every client process at once (``concurrency`` split) and sum the rates."""
    if CLIENT_POOL is None:
        return asyncio.run(load(port, size, concurrency, seconds, body))
    procs = CLIENT_POOL._max_workers
    shares = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    jobs = [(port, size, share, seconds, body) for share in shares if share]
    results = list(CLIENT_POOL.map(_load_in_process, jobs))
    return sum(r for r, _ in results), sum(m for _, m in results)


def interleaved(
    ports: dict[str, int], size: int, concurrency: int, rounds: int, seconds: float, body: bytes | None = None
) -> dict[str, tuple[float, float]]:
    """Measure every server ``rounds`` times, alternating, and return the median (req/s, MB/s) of each.

    Alternating rounds spreads background load on a shared machine over all contenders.
    """
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in ports}
    for _ in range(rounds):
        for name, port in ports.items():
            samples[name].append(load_parallel(port, size, concurrency, seconds, body))
    return {
        name: (statistics.median(r for r, _ in s), statistics.median(m for _, m in s))
        for name, s in samples.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per comparison (median)")
    parser.add_argument("--workers", type=int, default=0, help="server workers for 1-2 (default: CPUs)")
    parser.add_argument("--client-procs", type=int, default=2, help="client processes sharing the load")
    args = parser.parse_args()
    global CLIENT_POOL
    if args.client_procs > 1:
        CLIENT_POOL = concurrent.futures.ProcessPoolExecutor(args.client_procs)
        list(CLIENT_POOL.map(abs, range(args.client_procs)))  # start them before any measurement
    from airflow_ais_etl.runtime.config import available_cpus

    workers = args.workers or available_cpus()
    rounds, seconds = args.rounds, args.seconds
    print(
        f"CPUs available: {available_cpus()}; workers for both servers: {workers}; "
        f"{rounds} alternating rounds x {seconds:.0f}s, medians; {args.client_procs} client process(es)"
    )
    results: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp_name, contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)

        # 1 + 2: echo, ours vs AIS FastAPI (both up, measured alternately).
        ports = {
            "ours": stack.enter_context(ours(tmp, ECHO, workers))[0],
            "ais": stack.enter_context(ais_fastapi(tmp, workers))[0],
        }
        small = interleaved(ports, 4096, 32, rounds, seconds)
        big = interleaved(ports, 16 * MIB, 4, rounds, seconds)
        for name in ports:
            print(f"{name:5s} 4 KiB x32: {small[name][0]:8.0f} req/s   16 MiB x4: {big[name][1]:7.1f} MB/s")
        results.append(("4 KiB req/s ours/AIS", small["ours"][0] / small["ais"][0], ">= 1.5"))
        results.append(("16 MiB MB/s ours/AIS", big["ours"][1] / big["ais"][1], ">= 1.0"))
        stack.close()

        # 3: CPU-bound scaling with workers.
        body = os.urandom(MIB // 2) + bytes(MIB // 2)  # half random, half compressible
        for label, code in (("zlib-6 1 MiB", ZLIB6), ("GIL-bound 1 MiB", GIL_BOUND)):
            with contextlib.ExitStack() as scaling:
                ports = {f"{n}w": scaling.enter_context(ours(tmp, code, n))[0] for n in (1, 2)}
                rates = interleaved(ports, MIB, 8, rounds, seconds, body=body)
            ratio = rates["2w"][0] / rates["1w"][0]
            print(
                f"{label}: 1 worker {rates['1w'][0]:7.1f} req/s, 2 workers {rates['2w'][0]:7.1f} req/s -> {ratio:.2f}x"
            )
            results.append((f"{label} 2w/1w", ratio, ">= 1.7" if label.startswith("zlib") else "(info)"))

        # 4: peak RSS while streaming 256 MiB through a CHUNK_SIZE transform.
        with ours(tmp, STREAM_COPY, workers, CHUNK_SIZE=str(MIB)) as (port, proc):
            base = tree_rss(proc.pid)
            peak = base
            stop = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not stop.is_set():
                    peak = max(peak, tree_rss(proc.pid))
                    time.sleep(0.01)

            sampler = threading.Thread(target=sample)
            sampler.start()
            t0 = time.perf_counter()
            got = asyncio.run(stream_big(port, 256 * MIB))
            elapsed = time.perf_counter() - t0
            stop.set()
            sampler.join()
        if got != 256 * MIB:
            raise RuntimeError(f"streamed {got} bytes back, expected {256 * MIB}")
        print(
            f"256 MiB streamed in {elapsed:.1f}s ({256 * MIB / elapsed / 1e6:.0f} MB/s); "
            f"server tree RSS idle {base / MIB:.1f} MiB, peak {peak / MIB:.1f} MiB"
        )
        results.append(("peak RSS MiB (256 MiB stream)", peak / MIB, "<= 64"))

    print("\nsummary")
    for label, value, target in results:
        print(f"  {label:32s} {value:8.2f}   target {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
