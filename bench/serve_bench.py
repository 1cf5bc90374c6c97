"""Load-test inline reads through ``ais-etl serve``: N concurrent clients, every answer checked.

Run: ``.venv/bin/python bench/serve_bench.py [--clients 8] [--requests 2000] [--objects 200]``.
Starts ``ais-etl serve`` (local backend, two targets) on a free loopback port in a private temporary
home, fills a bucket through the server, inits an ETL (our runtime image, a transform that tags each
object with a digest of itself), then has ``--clients`` threads (one keep-alive session each) GET
random objects with ``etl_name`` until ``--requests`` answers are in. Every answer must equal the
expected transform of the object asked for: a lost request, an error status, or another object's
bytes is counted and makes the run fail. A plain GET round (no ETL) through the same server in the
same run is the baseline; the ratio inline/plain is what to compare across runs.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
TAG_CODE = (
    "import hashlib\n\ndef transform(data):\n"
    "    return hashlib.sha256(data).hexdigest().encode() + b'|' + data[::-1]\n"
)
RUNTIME_IMAGE = "airflow-ais-etl/runtime-python:3.11v2"


def expected(data: bytes) -> bytes:
    return hashlib.sha256(data).hexdigest().encode() + b"|" + data[::-1]


def start(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "AIS_ETL_HOME": str(tmp / "home")}
    cmd = [sys.executable, "-m", "airflow_ais_etl.cli", "serve", "--listen", "127.0.0.1:0"]
    proc = subprocess.Popen([*cmd, "--buckets", str(tmp / "buckets")], env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline().decode() if ready else ""
    if "listening on " not in line:
        proc.kill()
        raise SystemExit(f"ais-etl serve did not start: {line!r}")
    return proc, line.split("listening on ", 1)[1].split()[0]


def round_of(url: str, objects: dict[str, bytes], clients: int, total: int, etl: str) -> dict[str, float]:
    """``total`` GETs from ``clients`` threads; return req/s, errors, mismatches, lost."""
    names = list(objects)
    counter = iter(range(total))
    lock = threading.Lock()
    tally = {"ok": 0, "errors": 0, "mismatched": 0}

    def client(seed: int) -> None:
        rnd = random.Random(seed)
        session = requests.Session()
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            name = rnd.choice(names)
            params = {"provider": "ais", **({"etl_name": etl} if etl else {})}
            try:
                resp = session.get(f"{url}/v1/objects/bench/{name}", params=params, timeout=60)
            except requests.RequestException:
                key = "errors"
            else:
                want = expected(objects[name]) if etl else objects[name]
                key = (
                    "errors" if resp.status_code != 200 else ("ok" if resp.content == want else "mismatched")
                )
            with lock:
                tally[key] += 1

    began = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    elapsed = time.perf_counter() - began
    answered = tally["ok"] + tally["errors"] + tally["mismatched"]
    return {**tally, "lost": total - answered, "rps": total / elapsed, "seconds": elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--objects", type=int, default=200)
    args = parser.parse_args()
    rnd = random.Random(7)
    objects = {f"obj-{i:05d}": rnd.randbytes(rnd.randint(1, 16 << 10)) for i in range(args.objects)}
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        code = Path(tmp) / "code"
        code.mkdir()
        (code / "code.py").write_text(TAG_CODE)
        proc, url = start(Path(tmp))
        try:
            session = requests.Session()
            session.post(
                f"{url}/v1/buckets/bench", json={"action": "create-bck"}, timeout=30
            ).raise_for_status()
            for name, data in objects.items():
                session.put(f"{url}/v1/objects/bench/{name}", data=data, timeout=30).raise_for_status()
            spec = {
                "name": "bench-etl",
                "communication": "hpush://",
                "runtime": {
                    "image": RUNTIME_IMAGE,
                    "env": [{"name": "AIS_ETL_CODE_DIR", "value": str(code)}],
                },
            }
            session.put(f"{url}/v1/etl", json=spec, timeout=300).raise_for_status()
            plain = round_of(url, objects, args.clients, args.requests, "")
            inline = round_of(url, objects, args.clients, args.requests, "bench-etl")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "airflow_ais_etl.cli",
                    "--home",
                    str(Path(tmp) / "home"),
                    "stop",
                    "--all",
                ],
                capture_output=True,
                check=False,
            )
    print(f"{args.clients} clients, {args.requests} requests, {args.objects} objects of 1 B-16 KiB")
    for label, r in (("plain GET", plain), ("inline ETL GET", inline)):
        print(
            f"  {label:15s} {r['rps']:8.1f} req/s  ok {r['ok']:.0f}  errors {r['errors']:.0f}  "
            f"mismatched {r['mismatched']:.0f}  lost {r['lost']:.0f}  ({r['seconds']:.1f}s)"
        )
    print(f"  inline/plain req/s ratio {inline['rps'] / plain['rps']:.2f}")
    bad = sum(r[k] for r in (plain, inline) for k in ("errors", "mismatched", "lost"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
